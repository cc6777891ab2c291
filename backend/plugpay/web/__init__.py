"""The driver's pages: jinja2 templates and htmx partials."""
