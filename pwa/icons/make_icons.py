"""Generate plugpay's app icons with nothing but the standard library.

    python3 pwa/icons/make_icons.py

writes, next to this script:

- icon.svg               the vector icon (browser tab, header)
- icon-192.png           "any" icon, rounded square with transparent corners
- icon-512.png           "any" icon, rounded square with transparent corners
- icon-maskable-512.png  "maskable" icon: full-bleed background, symbol inside the safe zone
- apple-touch-icon.png   180x180, opaque (iOS fills transparency with black)

The output is deterministic, so re-running it only changes files when the
design below changes. Shapes are filled scanline by scanline with 4 sub-rows
per pixel and exact horizontal coverage, which is enough anti-aliasing for
icons at these sizes.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent

BACKGROUND = (0x0B, 0x6B, 0x47)  # the theme colour
SYMBOL = (0xFF, 0xFF, 0xFF)

# A lightning bolt in a 100 x 100 design box.
BOLT = [(57, 8), (22, 56), (45, 56), (38, 92), (78, 42), (55, 42), (64, 8)]
CORNER_RADIUS = 22  # of 100, for the "any" icons


def polygon_spans(points: list[tuple[float, float]], y: float) -> list[tuple[float, float]]:
    """Inside intervals of a polygon on the horizontal line at y (even-odd rule)."""
    xs = []
    n = len(points)
    for i in range(n):
        (x0, y0), (x1, y1) = points[i], points[(i + 1) % n]
        if (y0 <= y < y1) or (y1 <= y < y0):
            xs.append(x0 + (y - y0) * (x1 - x0) / (y1 - y0))
    xs.sort()
    return [(xs[i], xs[i + 1]) for i in range(0, len(xs) - 1, 2)]


def rounded_rect_spans(size: float, radius: float, y: float) -> list[tuple[float, float]]:
    if not 0 <= y < size:
        return []
    if radius <= 0:
        return [(0.0, size)]
    dy = 0.0
    if y < radius:
        dy = radius - y
    elif y > size - radius:
        dy = y - (size - radius)
    inset = radius - math.sqrt(max(radius * radius - dy * dy, 0.0))
    return [(inset, size - inset)]


def add_coverage(row: list[float], spans: list[tuple[float, float]], weight: float) -> None:
    width = len(row)
    for a, b in spans:
        a, b = max(a, 0.0), min(b, float(width))
        if b <= a:
            continue
        first, last = int(a), min(math.ceil(b) - 1, width - 1)
        for i in range(first, last + 1):
            cover = min(b, i + 1) - max(a, i)
            if cover > 0:
                row[i] += cover * weight


def render(size: int, *, maskable: bool, opaque: bool) -> bytes:
    """RGBA pixels, row by row, each row prefixed with PNG filter type 0."""
    # Maskable icons may be cropped to a circle of 80 % of the size: keep the
    # symbol well inside it. "any" icons use most of the rounded square.
    scale = size / 100 * (0.62 if maskable else 0.82)
    offset = (size - 100 * scale) / 2
    bolt = [(offset + x * scale, offset + y * scale) for x, y in BOLT]
    radius = 0.0 if (maskable or opaque) else size * CORNER_RADIUS / 100

    sub = 4
    out = bytearray()
    for py in range(size):
        bg = [0.0] * size
        fg = [0.0] * size
        for s in range(sub):
            y = py + (s + 0.5) / sub
            add_coverage(bg, rounded_rect_spans(size, radius, y), 1 / sub)
            add_coverage(fg, polygon_spans(bolt, y), 1 / sub)
        out.append(0)
        for px in range(size):
            a_bg = min(bg[px], 1.0)
            a_fg = min(fg[px], 1.0)
            rgb = [round(b + (f - b) * a_fg) for b, f in zip(BACKGROUND, SYMBOL, strict=True)]
            out.extend((*rgb, round(255 * a_bg)))
    return bytes(out)


def png(size: int, pixels: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels, 9))
        + chunk(b"IEND", b"")
    )


def svg() -> str:
    colour = "#{:02x}{:02x}{:02x}".format(*BACKGROUND)
    scale, offset = 0.82, 9.0
    points = " ".join(f"{offset + x * scale:g},{offset + y * scale:g}" for x, y in BOLT)
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">'
        f'<rect width="100" height="100" rx="{CORNER_RADIUS}" fill="{colour}"/>'
        f'<polygon points="{points}" fill="#fff"/></svg>\n'
    )


def main() -> None:
    targets = {
        "icon-192.png": (192, False, False),
        "icon-512.png": (512, False, False),
        "icon-maskable-512.png": (512, True, True),
        "apple-touch-icon.png": (180, False, True),
    }
    for name, (size, maskable, opaque) in targets.items():
        (HERE / name).write_bytes(png(size, render(size, maskable=maskable, opaque=opaque)))
    (HERE / "icon.svg").write_text(svg(), encoding="utf-8")


if __name__ == "__main__":
    main()
