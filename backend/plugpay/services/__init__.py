"""Use cases. They speak to the outside world only through the ports in ports.py."""
