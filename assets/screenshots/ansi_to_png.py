#!/usr/bin/env python3
"""Renders a terminal capture with ANSI colours (`tmux capture-pane -e -p`) to a PNG.

Usage: ansi_to_png.py CAPTURE.ansi OUT.png [--font PATH]

Needs Pillow (`pip install pillow`) and a monospace TrueType font (DejaVu Sans Mono by default).
Used for the workbench screenshot in the README: the real `leap tui` runs in a tmux pane, the
pane is captured with its colours, and this draws it cell by cell.
"""

import argparse
import re
import unicodedata

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"
SIZE = 15
FG = (220, 220, 220)
BG = (24, 26, 33)

# xterm's 16 colours, a little softened.
BASE16 = [
    (30, 30, 30), (205, 60, 60), (80, 190, 90), (215, 190, 70),
    (80, 130, 220), (190, 90, 190), (70, 190, 200), (200, 200, 200),
    (110, 110, 110), (240, 90, 90), (110, 220, 120), (240, 220, 100),
    (120, 170, 250), (230, 130, 230), (110, 220, 230), (250, 250, 250),
]


def xterm256(n):
    if n < 16:
        return BASE16[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    v = 8 + (n - 232) * 10
    return (v, v, v)


# Which sides of the cell a box-drawing character reaches: (up, down, left, right).
BOX = {
    "│": (1, 1, 0, 0), "─": (0, 0, 1, 1), "┌": (0, 1, 0, 1), "┐": (0, 1, 1, 0),
    "└": (1, 0, 0, 1), "┘": (1, 0, 1, 0), "├": (1, 1, 0, 1), "┤": (1, 1, 1, 0),
    "┬": (0, 1, 1, 1), "┴": (1, 0, 1, 1), "┼": (1, 1, 1, 1),
}


def box(draw, c, px, py, cw, ch, color):
    up, down, left, right = BOX[c]
    cx, cy = px + cw / 2, py + ch / 2
    if up:
        draw.line([(cx, py), (cx, cy)], fill=color)
    if down:
        draw.line([(cx, cy), (cx, py + ch)], fill=color)
    if left:
        draw.line([(px, cy), (cx, cy)], fill=color)
    if right:
        draw.line([(cx, cy), (px + cw, cy)], fill=color)


def parse(text):
    """Rows of cells (char, fg, bg, bold)."""
    rows = []
    sgr = re.compile(r"\x1b\[([0-9;]*)m")
    for line in text.split("\n"):
        fg, bg, bold, rev = None, None, False, False
        cells = []
        pos = 0
        for m in sgr.finditer(line + "\x1b[m"):
            for ch in line[pos:m.start()]:
                f, b = (bg, fg) if rev else (fg, bg)
                cells.append((ch, f, b, bold))
                if unicodedata.east_asian_width(ch) in ("W", "F"):
                    cells.append(("", f, b, bold))
            pos = m.end()
            codes = [int(c) if c else 0 for c in m.group(1).split(";")] or [0]
            i = 0
            while i < len(codes):
                c = codes[i]
                if c == 0:
                    fg, bg, bold, rev = None, None, False, False
                elif c == 1:
                    bold = True
                elif c == 22:
                    bold = False
                elif c == 7:
                    rev = True
                elif c == 27:
                    rev = False
                elif 30 <= c <= 37:
                    fg = BASE16[c - 30]
                elif 90 <= c <= 97:
                    fg = BASE16[c - 90 + 8]
                elif 40 <= c <= 47:
                    bg = BASE16[c - 40]
                elif 100 <= c <= 107:
                    bg = BASE16[c - 100 + 8]
                elif c == 39:
                    fg = None
                elif c == 49:
                    bg = None
                elif c in (38, 48) and i + 1 < len(codes):
                    if codes[i + 1] == 5 and i + 2 < len(codes):
                        color = xterm256(codes[i + 2])
                        i += 2
                    elif codes[i + 1] == 2 and i + 4 < len(codes):
                        color = tuple(codes[i + 2:i + 5])
                        i += 4
                    else:
                        color = None
                    if c == 38:
                        fg = color
                    else:
                        bg = color
                i += 1
        rows.append(cells)
    while rows and not rows[-1]:
        rows.pop()
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("capture")
    ap.add_argument("out")
    ap.add_argument("--font", default=FONT)
    args = ap.parse_args()
    rows = parse(open(args.capture, encoding="utf-8").read())
    font = ImageFont.truetype(args.font, SIZE)
    bold = ImageFont.truetype(BOLD, SIZE)
    left, top, right, bottom = font.getbbox("M")
    cw = font.getlength("M")
    ch = int(SIZE * 1.3)
    width = max(len(r) for r in rows)
    img = Image.new("RGB", (int(cw * width) + 20, ch * len(rows) + 20), BG)
    draw = ImageDraw.Draw(img)
    for y, row in enumerate(rows):
        for x, (c, f, b, is_bold) in enumerate(row):
            px, py = 10 + x * cw, 10 + y * ch
            if b is not None:
                draw.rectangle([px, py, px + cw + 1, py + ch], fill=b)
            if c in BOX:
                # Box lines drawn as lines, so that they join across rows.
                box(draw, c, px, py, cw, ch, f or FG)
            elif c.strip():
                draw.text((px, py + 2), c, fill=f or FG, font=bold if is_bold else font)
    img.save(args.out)


if __name__ == "__main__":
    main()
