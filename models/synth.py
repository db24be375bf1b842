"""Synthetic licence-plate and scene renderer for alpr-central.

Everything here is procedurally generated (PIL + numpy + system fonts); no photograph pixels are
used, except by `paste_plate_into(...)`, which callers may use to composite a synthetic plate into
an image they already hold in memory (training only, never written to the repository).

Main entry points
  random_plate_text(rng)                    -> str
  render_plate(rng, text)                   -> PIL RGBA plate image (no augmentation)
  render_reader_sample(rng, text=None)      -> (uint8 [32,128] grayscale crop, text)
  render_scene(rng, W=640, H=480, ...)      -> (PIL RGB scene, [(text, (x, y, w, h)), ...])
  paste_plate_into(rng, img, forbid=None)   -> (PIL RGB, (text, (x, y, w, h))) or None

Run `python synth.py --samples DIR` to write the demo scenes (DIR/*.jpg + DIR/labels.csv).
"""
import io
import math
import os
import random
import sys
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"

_FONT_CANDIDATES_MAIN = [
    # (path, weight for sampling)
    ("/usr/share/fonts/opentype/urw-base35/NimbusSansNarrow-Bold.otf", 4),
    ("/usr/share/fonts/opentype/urw-base35/NimbusSansNarrow-Regular.otf", 3),
    ("/usr/share/fonts/truetype/liberation/LiberationSansNarrow-Bold.ttf", 3),
    ("/usr/share/fonts/truetype/liberation/LiberationSansNarrow-Regular.ttf", 2),
    ("/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf", 3),
    ("/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed.ttf", 2),
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", 1),
    ("/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf", 2),
    ("/usr/share/fonts/truetype/freefont/FreeSansBold.ttf", 2),
    ("/usr/share/fonts/truetype/freefont/FreeSans.ttf", 1),
    ("/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf", 2),
    ("/usr/share/fonts/truetype/liberation/LiberationMono-Bold.ttf", 1),
    ("/usr/share/fonts/opentype/urw-base35/NimbusSans-Bold.otf", 1),
    ("/usr/share/fonts/opentype/urw-base35/URWGothic-Demi.otf", 1),
    ("/usr/share/fonts/opentype/urw-base35/URWGothic-Book.otf", 1),
    ("/usr/share/fonts/opentype/urw-base35/NimbusMonoPS-Bold.otf", 1),
    ("/usr/share/fonts/truetype/dejavu/DejaVuSerifCondensed-Bold.ttf", 1),
    ("/usr/share/fonts/opentype/urw-base35/C059-Bold.otf", 1),
    ("/usr/share/fonts/opentype/urw-base35/NimbusRoman-Bold.otf", 1),
]
_FONT_CANDIDATES_LABEL = [
    "/usr/share/fonts/opentype/urw-base35/NimbusRoman-Bold.otf",
    "/usr/share/fonts/opentype/urw-base35/NimbusRoman-BoldItalic.otf",
    "/usr/share/fonts/opentype/urw-base35/C059-BdIta.otf",
    "/usr/share/fonts/opentype/urw-base35/Z003-MediumItalic.otf",
    "/usr/share/fonts/opentype/urw-base35/URWBookman-Demi.otf",
    "/usr/share/fonts/opentype/urw-base35/P052-Bold.otf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSerif-BoldItalic.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSerifBoldItalic.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSansBold.ttf",
]
_FALLBACK = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
MAIN_FONTS = [(p, w) for p, w in _FONT_CANDIDATES_MAIN if os.path.exists(p)] or [(_FALLBACK, 1)]
LABEL_FONTS = [p for p in _FONT_CANDIDATES_LABEL if os.path.exists(p)] or [_FALLBACK]

STATES = ["ALABAMA", "ALASKA", "ARIZONA", "ARKANSAS", "California", "COLORADO", "Connecticut",
          "DELAWARE", "Florida", "GEORGIA", "HAWAII", "IDAHO", "ILLINOIS", "Indiana", "IOWA",
          "KANSAS", "KENTUCKY", "Louisiana", "MAINE", "Maryland", "Massachusetts", "MICHIGAN",
          "Minnesota", "MISSISSIPPI", "MISSOURI", "MONTANA", "Nebraska", "NEVADA",
          "New Hampshire", "New Jersey", "NEW MEXICO", "NEW YORK", "North Carolina",
          "NORTH DAKOTA", "OHIO", "OKLAHOMA", "OREGON", "Pennsylvania", "RHODE ISLAND",
          "South Carolina", "SOUTH DAKOTA", "TENNESSEE", "TEXAS", "UTAH", "VERMONT", "Virginia",
          "WASHINGTON", "West Virginia", "WISCONSIN", "WYOMING", "Washington, D.C."]
SLOGANS = ["Famous Potatoes", "The Lone Star State", "Great Lakes Splendor", "America's Dairyland",
           "Live Free or Die", "The Spirit of America", "Land of Lincoln", "Sunshine State",
           "Green Mountain State", "The Empire State", "Garden State", "Ocean State",
           "First in Flight", "Wild Wonderful", "Grand Canyon State", "Aloha State",
           "Sportsman's Paradise", "Vacationland", "Explore Minnesota", "The Natural State",
           "Wildlife", "In God We Trust", "Keep it Beautiful", "Celebrating Statehood",
           "WWW.STATE.US", "Land of Enchantment", "Greatest Snow on Earth", "Peace Garden State",
           "Conquer Cancer", "Heart of Dixie", "Discover Oregon", "Big Sky Country"]
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
PATTERNS = ["LLLDDDD", "LLLDDDD", "DLLLDDD", "DLLLDDD", "DDDLLL", "LLLDDD", "LLLDDD", "DLLDDD",
            "LLDDDD", "DDDDLL", "LDDLLL", "DDLLDD", "LLDLLL", "DDDLDD", "LDDDDD", "DDDDDD",
            "LLLLDDD", "DLDDDD", "LLDDDL", "DDDDDDD", "LLLDDDL", "DDLLLD", "LDLDLD", "LLLLDD",
            "DLLDDDD", "LLDDLL", "DDDDD", "LLDDD", "LDDDD"]


# ----------------------------------------------------------------------------- helpers
def _choice_w(rng, items):
    tot = sum(w for _, w in items)
    r = rng.random() * tot
    for it, w in items:
        r -= w
        if r <= 0:
            return it
    return items[-1][0]


@lru_cache(maxsize=512)
def _font(path, size):
    return ImageFont.truetype(path, max(4, int(size)))


@lru_cache(maxsize=4096)
def _glyph(path, ch):
    """High-res (cap height ~100 px) tight glyph mask as a PIL 'L' image."""
    f = _font(path, 130)
    l, t, r, b = f.getbbox(ch)
    im = Image.new("L", (r - l + 4, b - t + 4), 0)
    ImageDraw.Draw(im).text((2 - l, 2 - t), ch, font=f, fill=255)
    bb = im.getbbox() or (0, 0, im.width, im.height)
    return im.crop(bb)


def random_plate_text(rng):
    r = rng.random()
    if r < 0.72:
        pat = rng.choice(PATTERNS)
    elif r < 0.87:  # vanity / random mix
        n = rng.choice([4, 5, 5, 6, 6, 7, 7, 8])
        pat = "".join(rng.choice("LLD") for _ in range(n))
    else:
        n = rng.choice([5, 6, 7, 8])
        pat = "".join(rng.choice("LD") for _ in range(n))
    return "".join(rng.choice(LETTERS) if c == "L" else rng.choice(DIGITS) for c in pat)


def _rand_color(rng, lo=0, hi=255):
    return tuple(int(rng.uniform(lo, hi)) for _ in range(3))


def _mix(c1, c2, t):
    return tuple(int(a * (1 - t) + b * t) for a, b in zip(c1, c2))


def _vgradient(w, h, c1, c2):
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    a = np.array(c1, np.float32)[None, None] * (1 - t) + np.array(c2, np.float32)[None, None] * t
    return np.repeat(a, w, axis=1)


def _perspective_coeffs(src, dst):
    """Coefficients for PIL PERSPECTIVE mapping output pts `dst` -> input pts `src`."""
    A, B = [], []
    for (x, y), (u, v) in zip(dst, src):
        A.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        A.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        B += [u, v]
    return np.linalg.solve(np.array(A, np.float64), np.array(B, np.float64)).tolist()


# ----------------------------------------------------------------------------- plate
def _plate_style(rng):
    r = rng.random()
    if r < 0.55:  # white / light plate, dark text
        bg1 = _rand_color(rng, 215, 255)
        bg2 = _mix(bg1, _rand_color(rng, 120, 255), rng.uniform(0, 0.6))
        fg = rng.choice([(20, 30, 110), (10, 10, 10), (25, 25, 25), (140, 20, 25), (15, 70, 30),
                         (40, 40, 120), (90, 20, 40), _rand_color(rng, 0, 90)])
    elif r < 0.78:  # tinted (yellow, light blue, cream, gray)
        bg1 = rng.choice([(245, 220, 90), (200, 220, 240), (235, 230, 200), (200, 200, 200),
                          (230, 200, 160), (190, 225, 200), _rand_color(rng, 150, 250)])
        bg2 = _mix(bg1, _rand_color(rng, 150, 255), rng.uniform(0, 0.7))
        fg = rng.choice([(10, 10, 10), (20, 30, 110), (120, 20, 20), _rand_color(rng, 0, 70)])
    elif r < 0.9:  # dark plate, light text
        bg1 = rng.choice([(15, 15, 15), (20, 40, 110), (20, 70, 40), (100, 20, 20),
                          _rand_color(rng, 0, 80)])
        bg2 = _mix(bg1, _rand_color(rng, 0, 120), rng.uniform(0, 0.5))
        fg = rng.choice([(250, 250, 250), (245, 210, 60), (230, 230, 200), _rand_color(rng, 190, 255)])
    else:  # two-band / scenic
        bg1 = _rand_color(rng, 100, 255)
        bg2 = _rand_color(rng, 150, 255)
        fg = rng.choice([(10, 10, 10), (20, 30, 110), (120, 20, 20)])
    return bg1, bg2, fg


def _draw_text_fit(draw, rng, text, font_path, box, fill, anchor="mm"):
    x0, y0, x1, y1 = box
    h = max(4, y1 - y0)
    size = h
    f = _font(font_path, size)
    w = draw.textlength(text, font=f)
    if w > (x1 - x0) and w > 0:
        size = max(4, int(size * (x1 - x0) / w))
        f = _font(font_path, size)
    draw.text(((x0 + x1) / 2, (y0 + y1) / 2), text, font=f, fill=fill, anchor=anchor)


def _main_text_mask(rng, text, font_path, W, char_h, spacing, squeeze, sep_pos, sep_kind):
    """Return (mask L image, per-char rects) for the main registration text."""
    glyphs = []
    for ch in text:
        g = _glyph(font_path, ch)
        gw = max(2, int(g.width * char_h / max(1, g.height) * squeeze))
        if ch in "1I" and gw < char_h * 0.18:
            gw = int(char_h * 0.18)
        glyphs.append(g.resize((gw, char_h), Image.BILINEAR))
    sp = int(spacing * char_h)
    sep_w = 0
    if sep_pos is not None:
        sep_w = int(char_h * (0.45 if sep_kind != "space" else rng.uniform(0.3, 0.8)))
    total = sum(g.width for g in glyphs) + sp * (len(glyphs) - 1) + sep_w
    mask = Image.new("L", (max(total, 1) + 4, char_h + 4), 0)
    x = 2
    for i, g in enumerate(glyphs):
        if sep_pos is not None and i == sep_pos:
            d = ImageDraw.Draw(mask)
            cx, cy = x + sep_w / 2 - sp / 2, 2 + char_h / 2
            if sep_kind == "dash":
                d.rectangle([cx - sep_w * 0.3, cy - char_h * 0.05, cx + sep_w * 0.3, cy + char_h * 0.05], fill=255)
            elif sep_kind == "dot":
                r = char_h * 0.07
                d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
            elif sep_kind == "symbol":
                r = char_h * rng.uniform(0.12, 0.22)
                k = rng.randint(0, 2)
                if k == 0:
                    pts = [(cx + r * math.cos(a * math.pi / 5 - math.pi / 2) * (1 if a % 2 == 0 else 0.45),
                            cy + r * math.sin(a * math.pi / 5 - math.pi / 2) * (1 if a % 2 == 0 else 0.45))
                           for a in range(10)]
                    d.polygon(pts, fill=255)
                elif k == 1:
                    d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=255, width=max(1, int(r / 3)))
                else:
                    d.polygon([(cx - r, cy - r * 0.6), (cx + r, cy - r * 0.8), (cx + r * 0.8, cy + r),
                               (cx - r * 0.7, cy + r * 0.7)], fill=255)
            x += sep_w
        mask.paste(g, (x, 2))
        x += g.width + sp
    return mask


def render_plate(rng, text, W=None):
    """Render an un-augmented plate. Returns RGBA image (alpha = plate shape)."""
    W = W or rng.randint(240, 320)
    H = int(W * rng.uniform(0.46, 0.56))
    bg1, bg2, fg = _plate_style(rng)
    arr = _vgradient(W, H, bg1, bg2) if rng.random() < 0.6 else _vgradient(W, H, bg2, bg1)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img, "RGBA")
    # scenic decorations
    for _ in range(rng.choice([0, 0, 1, 2, 3, 4])):
        c = _rand_color(rng) + (int(rng.uniform(25, 110)),)
        k = rng.random()
        if k < 0.35:
            x, y, r = rng.uniform(0, W), rng.uniform(0, H), rng.uniform(H * 0.1, H * 0.6)
            d.ellipse([x - r, y - r * rng.uniform(0.4, 1), x + r, y + r], fill=c)
        elif k < 0.65:  # mountains / hills at bottom
            pts = [(0, H)] + [(x, H * rng.uniform(0.55, 0.9)) for x in np.linspace(0, W, rng.randint(3, 8))] + [(W, H)]
            d.polygon(pts, fill=c)
        else:  # horizontal band
            y = rng.uniform(0, H)
            d.rectangle([0, y, W, y + rng.uniform(3, H * 0.25)], fill=c)
    # border
    if rng.random() < 0.6:
        bc = fg if rng.random() < 0.6 else _rand_color(rng)
        bw = rng.randint(1, max(2, W // 60))
        inset = rng.randint(0, 4)
        d.rounded_rectangle([inset, inset, W - 1 - inset, H - 1 - inset], radius=rng.randint(2, 14),
                            outline=bc, width=bw)
    label_font = rng.choice(LABEL_FONTS)
    accent = fg if rng.random() < 0.4 else _rand_color(rng, 0, 200)
    # state name on top (mostly) or bottom
    top_h = int(H * rng.uniform(0.12, 0.22))
    state_top = rng.random() < 0.8
    if rng.random() < 0.92:
        st = rng.choice(STATES)
        if rng.random() < 0.3:
            st = st.upper()
        y0 = int(H * rng.uniform(0.04, 0.1)) if state_top else int(H * 0.8)
        _draw_text_fit(d, rng, st, label_font, (W * 0.18, y0, W * 0.82, y0 + top_h), accent)
    # slogan at bottom (or top when state is at bottom)
    if rng.random() < 0.75:
        sl = rng.choice(SLOGANS)
        sh = int(H * rng.uniform(0.07, 0.13))
        y0 = int(H * rng.uniform(0.82, 0.88)) if state_top else int(H * 0.06)
        _draw_text_fit(d, rng, sl, rng.choice(LABEL_FONTS), (W * 0.15, y0, W * 0.85, y0 + sh),
                       accent if rng.random() < 0.5 else fg)
    # stickers in corners
    for corner in range(4):
        if rng.random() < 0.28:
            sw, shh = int(W * rng.uniform(0.09, 0.15)), int(H * rng.uniform(0.12, 0.2))
            x = rng.randint(4, 10) if corner % 2 == 0 else W - sw - rng.randint(4, 10)
            y = rng.randint(4, 10) if corner < 2 else H - shh - rng.randint(4, 10)
            sc = _rand_color(rng)
            d.rectangle([x, y, x + sw, y + shh], fill=sc)
            tc = (0, 0, 0) if sum(sc) > 380 else (255, 255, 255)
            _draw_text_fit(d, rng, rng.choice(MONTHS + [str(rng.randint(0, 99)).zfill(2)]),
                           _FALLBACK, (x + 1, y + 1, x + sw - 1, y + shh - 1), tc)
    # main text
    font_path = _choice_w(rng, MAIN_FONTS)
    char_h = int(H * rng.uniform(0.40, 0.56))
    squeeze = rng.uniform(0.65, 1.05)
    spacing = rng.uniform(0.02, 0.22)
    sep_pos, sep_kind = None, None
    if len(text) >= 4 and rng.random() < 0.6:
        sep_pos = rng.randint(2, len(text) - 2)
        # prefer a letter/digit boundary
        for i in range(1, len(text)):
            if (text[i - 1] in DIGITS) != (text[i] in DIGITS) and rng.random() < 0.7:
                sep_pos = i
                break
        sep_kind = rng.choice(["space", "space", "dash", "dash", "dot", "symbol"])
    mask = _main_text_mask(rng, text, font_path, W, char_h, spacing, squeeze, sep_pos, sep_kind)
    stacked = rng.random() < 0.12
    max_w = int(W * (0.80 if stacked else 0.9))
    if mask.width > max_w:
        mask = mask.resize((max_w, mask.height), Image.BILINEAR)
    elif rng.random() < 0.3 and mask.width < W * 0.6:  # wide spread text
        mask = mask.resize((int(mask.width * rng.uniform(1.0, 1.25)), mask.height), Image.BILINEAR)
    cx = W / 2 + rng.uniform(-0.04, 0.04) * W + (W * 0.06 if stacked else 0)
    cy = H * rng.uniform(0.5, 0.58)
    x0, y0 = int(cx - mask.width / 2), int(cy - mask.height / 2)
    if rng.random() < 0.4:  # embossed shadow
        off = rng.randint(1, 3)
        sh = _mix(fg, (0, 0, 0), 0.5) if sum(fg) > 200 else _mix(bg1, (0, 0, 0), 0.45)
        img.paste(Image.new("RGB", mask.size, sh), (x0 + off, y0 + off), mask)
    if rng.random() < 0.15:  # outlined characters
        oc = _rand_color(rng)
        img.paste(Image.new("RGB", mask.size, oc), (x0, y0), mask.filter(ImageFilter.MaxFilter(3)))
    img.paste(Image.new("RGB", mask.size, fg), (x0, y0), mask)
    d = ImageDraw.Draw(img, "RGBA")
    if stacked:  # small stacked characters on the left (not part of the label)
        sc = rng.choice(LETTERS + DIGITS) + rng.choice(LETTERS + DIGITS)
        sx = max(2, x0 - int(H * 0.16))
        sf = _font(_FALLBACK, int(char_h * 0.4))
        d.text((sx, cy - char_h * 0.25), sc[0], font=sf, fill=fg, anchor="mm")
        d.text((sx, cy + char_h * 0.25), sc[1], font=sf, fill=fg, anchor="mm")
    # bolts
    if rng.random() < 0.7:
        r = max(2, int(W * rng.uniform(0.008, 0.018)))
        bc = _rand_color(rng, 90, 220)
        ys = [H * rng.uniform(0.08, 0.16)] + ([H * rng.uniform(0.84, 0.92)] if rng.random() < 0.4 else [])
        for yb in ys:
            for xb in (W * rng.uniform(0.2, 0.3), W * rng.uniform(0.7, 0.8)):
                d.ellipse([xb - r, yb - r, xb + r, yb + r], fill=bc, outline=(60, 60, 60))
    # dealer frame
    if rng.random() < 0.25:
        fw = int(W * rng.uniform(0.03, 0.07))
        fr = Image.new("RGB", (W + 2 * fw, H + 2 * fw + int(fw * rng.uniform(0, 1.5))),
                       _rand_color(rng, 0, 255) if rng.random() < 0.4 else _rand_color(rng, 0, 50))
        fr.paste(img, (fw, fw))
        if rng.random() < 0.5:
            fd = ImageDraw.Draw(fr)
            _draw_text_fit(fd, rng, rng.choice(["AUTO SALES", "MOTORS", "HONDA", "FORD", "TOYOTA",
                                                 "DEALER", "CHEVROLET"]), _FALLBACK,
                           (fw * 4, H + fw, fr.width - fw * 4, fr.height - 1), _rand_color(rng, 150, 255))
        img = fr
    alpha = Image.new("L", img.size, 0)
    ImageDraw.Draw(alpha).rounded_rectangle([0, 0, img.width - 1, img.height - 1],
                                            radius=rng.randint(0, max(1, img.width // 25)), fill=255)
    img = img.convert("RGBA")
    img.putalpha(alpha)
    return img


# ----------------------------------------------------------------------------- backgrounds
def _noise_texture(rng, w, h, base, amp, scale):
    sw, sh = max(1, w // scale), max(1, h // scale)
    n = np.asarray(Image.fromarray((np.random.default_rng(rng.randint(0, 2**31)).random((sh, sw)) * 255)
                                   .astype(np.uint8)).resize((w, h), Image.BICUBIC), np.float32) / 255 - 0.5
    arr = np.array(base, np.float32)[None, None, :] + n[:, :, None] * amp
    return arr


def car_texture(rng, w, h):
    """A car-body-like patch (paint colour, bumper bands, grille lines) as PIL RGB."""
    paint = rng.choice([(230, 230, 230), (180, 180, 185), (30, 30, 35), (120, 20, 25), (20, 40, 100),
                        (90, 90, 95), (200, 190, 170), (60, 80, 60), _rand_color(rng)])
    arr = _noise_texture(rng, w, h, paint, rng.uniform(10, 60), rng.choice([4, 16, 64]))
    arr *= _vgradient(1, h, (rng.uniform(0.6, 1.2),) * 3, (rng.uniform(0.5, 1.1),) * 3)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img, "RGBA")
    for _ in range(rng.randint(0, 6)):
        y = rng.uniform(0, h)
        c = _rand_color(rng, 0, 255) + (int(rng.uniform(60, 255)),)
        d.rectangle([rng.uniform(-w, w * 0.5), y, rng.uniform(w * 0.5, w * 2), y + rng.uniform(1, h * 0.2)], fill=c)
    if rng.random() < 0.4:  # grille lines
        y0 = rng.uniform(0, h * 0.4)
        c = _rand_color(rng, 0, 80)
        for k in range(rng.randint(2, 8)):
            yy = y0 + k * rng.uniform(3, 8)
            d.line([0, yy, w, yy], fill=c, width=rng.randint(1, 3))
    if rng.random() < 0.3:  # random text (dealer stickers, badges)
        _draw_text_fit(d, rng, "".join(rng.choice(LETTERS) for _ in range(rng.randint(3, 8))),
                       rng.choice(LABEL_FONTS),
                       (rng.uniform(0, w * 0.5), rng.uniform(0, h * 0.8), rng.uniform(w * 0.5, w), h),
                       _rand_color(rng))
    return img


# ----------------------------------------------------------------------------- photometric
def _motion_blur(arr, rng, k):
    ang = rng.uniform(0, math.pi)
    dx, dy = math.cos(ang), math.sin(ang)
    acc = np.zeros_like(arr, dtype=np.float32)
    for i in range(k):
        t = i - (k - 1) / 2
        acc += np.roll(np.roll(arr, int(round(t * dy)), axis=0), int(round(t * dx)), axis=1)
    return acc / k


def photometric(rng, img, strength=1.0):
    """Blur, motion blur, glare, shadow, contrast, noise, JPEG. img: PIL RGB -> PIL RGB."""
    w, h = img.size
    if rng.random() < 0.35 * strength:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.3) * strength))
    arr = np.asarray(img, np.float32)
    if rng.random() < 0.2 * strength:
        arr = _motion_blur(arr, rng, rng.randint(2, 5))
    if rng.random() < 0.25 * strength:  # glare
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.2, 0.8) * max(w, h)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        g = np.clip(1 - ((xx - cx) ** 2 + (yy - cy) ** 2) / r ** 2, 0, 1) * rng.uniform(40, 170)
        arr = arr + g[:, :, None]
    if rng.random() < 0.25 * strength:  # shadow: darken one side of a random line
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        a = rng.uniform(0, 2 * math.pi)
        side = (xx - rng.uniform(0, w)) * math.cos(a) + (yy - rng.uniform(0, h)) * math.sin(a) > 0
        arr = np.where(side[:, :, None], arr * rng.uniform(0.3, 0.75), arr)
    # contrast / brightness / gamma / colour cast
    c = rng.uniform(0.35, 1.3) if rng.random() < 0.5 * strength else 1.0
    b = rng.uniform(-60, 60) * strength
    arr = (arr - 128) * c + 128 + b
    arr = arr * np.array([rng.uniform(0.85, 1.15) for _ in range(3)], np.float32)
    arr = np.clip(arr, 0, 255)
    if rng.random() < 0.3:
        arr = 255 * (arr / 255) ** rng.uniform(0.6, 1.6)
    if rng.random() < 0.1 * strength:  # IR-like: grayscale, bright plate
        g = arr @ np.array([0.299, 0.587, 0.114], np.float32)
        g = 255 * np.clip(g / 255 * rng.uniform(1.0, 1.6), 0, 1) ** rng.uniform(0.6, 1.5)
        arr = np.repeat(g[:, :, None], 3, axis=2)
    if rng.random() < 0.6 * strength:
        arr = arr + np.random.default_rng(rng.randint(0, 2**31)).normal(0, rng.uniform(2, 14), arr.shape)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.6 * strength:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=rng.randint(12, 90))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img


# ----------------------------------------------------------------------------- compositing
def _warp_quad(rng, pw, ph, cx, cy, max_rot=8, max_persp=0.10):
    """Destination quad (4 pts) for a plate of size pw x ph centred at (cx, cy)."""
    a = math.radians(rng.uniform(-max_rot, max_rot))
    yaw = rng.uniform(-max_persp, max_persp)  # left/right edge height ratio
    pitch = rng.uniform(-max_persp, max_persp) * 0.6
    shear = rng.uniform(-0.08, 0.08)
    pts = []
    for sx, sy in [(-1, -1), (1, -1), (1, 1), (-1, 1)]:
        x = sx * pw / 2 * (1 + pitch * sy) + shear * sy * ph / 2
        y = sy * ph / 2 * (1 + yaw * sx)
        x += rng.uniform(-0.015, 0.015) * pw
        y += rng.uniform(-0.02, 0.02) * ph
        pts.append((cx + x * math.cos(a) - y * math.sin(a), cy + x * math.sin(a) + y * math.cos(a)))
    return pts


def composite_plate(rng, canvas, plate_rgba, quad):
    """Warp RGBA plate onto PIL RGB canvas at quad. Returns axis-aligned bbox (x, y, w, h)."""
    pw, ph = plate_rgba.size
    xs, ys = [p[0] for p in quad], [p[1] for p in quad]
    x0, y0 = int(math.floor(min(xs))), int(math.floor(min(ys)))
    x1, y1 = int(math.ceil(max(xs))), int(math.ceil(max(ys)))
    ow, oh = max(1, x1 - x0), max(1, y1 - y0)
    local = [(x - x0, y - y0) for x, y in quad]
    coeffs = _perspective_coeffs([(0, 0), (pw, 0), (pw, ph), (0, ph)], local)
    warped = plate_rgba.transform((ow, oh), Image.PERSPECTIVE, coeffs, Image.BILINEAR)
    canvas.paste(warped.convert("RGB"), (x0, y0), warped.split()[3])
    return (x0, y0, ow, oh)


def _resize_any(rng, im, size):
    """Resize with a random filter so the reader does not overfit one resampler."""
    r = rng.random()
    f = Image.BILINEAR if r < 0.75 else (Image.BICUBIC if r < 0.85 else Image.NEAREST)
    if f == Image.BILINEAR and rng.random() < 0.2 and im.width > size[0] * 2:
        # non-antialiased bilinear (cv2-like): subsample first
        im = im.resize((size[0] * 2, size[1] * 2), Image.NEAREST)
    return im.resize(size, f)


def luma(img):
    a = np.asarray(img.convert("RGB"), np.float32)
    return a @ np.array([0.299, 0.587, 0.114], np.float32)


def reader_input_from_crop(img_rgb, rng=None):
    """Contract preprocessing: luma -> bilinear resize to 128x32 -> uint8 (caller /255)."""
    g = Image.fromarray(np.clip(luma(img_rgb) + 0.5, 0, 255).astype(np.uint8), "L")
    if rng is not None:
        g = _resize_any(rng, g, (128, 32))
    else:
        g = g.resize((128, 32), Image.BILINEAR)
    return np.asarray(g, np.uint8)


def render_reader_sample(rng, text=None):
    """A reader training sample: (uint8 [32,128], text)."""
    text = text or random_plate_text(rng)
    plate = render_plate(rng, text)
    pw, ph = plate.size
    cw, ch = int(pw * 1.8), int(ph * 2.0)
    canvas = car_texture(rng, cw, ch)
    quad = _warp_quad(rng, pw, ph, cw / 2, ch / 2)
    x, y, w, h = composite_plate(rng, canvas, plate, quad)
    # crop: tight-ish (crops set style) or detector-style (expanded 10%/15% + jitter)
    if rng.random() < 0.45:
        m = [rng.uniform(-0.03, 0.06) for _ in range(4)]
        l, t, r, b = x - m[0] * w, y - m[1] * h, x + w + m[2] * w, y + h + m[3] * h
    else:
        j = [rng.uniform(-0.08, 0.08) for _ in range(4)]
        l, t = x - (0.10 + j[0]) * w, y - (0.15 + j[1]) * h
        r, b = x + w + (0.10 + j[2]) * w, y + h + (0.15 + j[3]) * h
    crop = canvas.crop((int(max(0, l)), int(max(0, t)), int(min(cw, r)), int(min(ch, b))))
    # simulate capture resolution: plate width between ~35 and ~300 px
    target_w = int(math.exp(rng.uniform(math.log(34), math.log(300))))
    sc = target_w / max(1, w)
    if sc < 1:
        crop = crop.resize((max(8, int(crop.width * sc)), max(4, int(crop.height * sc))), Image.BILINEAR)
    crop = photometric(rng, crop)
    return reader_input_from_crop(crop, rng), text


def render_easy_sample(rng, text=None):
    """An easy, clutter-light reader sample (curriculum aid to get CTC training started)."""
    text = text or random_plate_text(rng)
    W, H = 256, 64
    bgv, fgv = rng.uniform(150, 255), rng.uniform(0, 90)
    if rng.random() < 0.2:
        bgv, fgv = rng.uniform(0, 80), rng.uniform(170, 255)
    img = Image.new("L", (W, H), int(bgv))
    d = ImageDraw.Draw(img)
    char_h = int(H * rng.uniform(0.45, 0.75))
    sep_pos = rng.randint(2, len(text) - 2) if len(text) >= 4 and rng.random() < 0.5 else None
    mask = _main_text_mask(rng, text, _choice_w(rng, MAIN_FONTS), W, char_h, rng.uniform(0.02, 0.2),
                           rng.uniform(0.65, 1.05), sep_pos, rng.choice(["space", "dash", "dot"]))
    maxw = int(W * rng.uniform(0.7, 0.95))
    if mask.width > maxw:
        mask = mask.resize((maxw, mask.height), Image.BILINEAR)
    x0 = int((W - mask.width) / 2 + rng.uniform(-0.06, 0.06) * W)
    y0 = int((H - mask.height) / 2 + rng.uniform(-0.08, 0.12) * H)
    img.paste(Image.new("L", mask.size, int(fgv)), (x0, y0), mask)
    if rng.random() < 0.3:
        _draw_text_fit(d, rng, rng.choice(STATES), rng.choice(LABEL_FONTS),
                       (W * 0.25, 1, W * 0.75, max(2, y0 - 1)), int(fgv))
    if rng.random() < 0.4:
        d.rectangle([1, 1, W - 2, H - 2], outline=int(fgv), width=rng.randint(1, 3))
    a = np.asarray(img, np.float32) + np.random.default_rng(rng.randint(0, 2**31)).normal(0, rng.uniform(0, 10), (H, W))
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    return np.asarray(img.resize((128, 32), Image.BILINEAR), np.uint8), text


# ----------------------------------------------------------------------------- scenes
def _scene_background(rng, W, H):
    horizon = rng.uniform(0.2, 0.6) * H
    sky = _vgradient(W, int(horizon) + 1, _rand_color(rng, 120, 255), _rand_color(rng, 80, 230))
    road = _noise_texture(rng, W, H - int(horizon) - 1, _rand_color(rng, 60, 160) if rng.random() < 0.7 else
                          (100, 100, 100), rng.uniform(10, 50), rng.choice([2, 8, 32]))
    arr = np.concatenate([sky, road], axis=0)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img, "RGBA")
    for _ in range(rng.randint(0, 10)):  # buildings, trees, poles, lane markings, shadows
        k = rng.random()
        c = _rand_color(rng) + (int(rng.uniform(80, 255)),)
        if k < 0.3:
            x, w_ = rng.uniform(0, W), rng.uniform(20, W * 0.4)
            d.rectangle([x, horizon - rng.uniform(20, horizon), x + w_, horizon], fill=c)
        elif k < 0.5:
            x, y, r = rng.uniform(0, W), rng.uniform(0, horizon), rng.uniform(10, 80)
            d.ellipse([x - r, y - r, x + r, y + r], fill=(rng.randint(20, 80), rng.randint(60, 140), rng.randint(20, 70), 255))
        elif k < 0.65:
            x = rng.uniform(0, W)
            d.rectangle([x, rng.uniform(0, horizon), x + rng.uniform(3, 15), H], fill=c)
        elif k < 0.8:
            y = rng.uniform(horizon, H)
            d.line([0, y, W, y + rng.uniform(-40, 40)], fill=(230, 230, 230, 200), width=rng.randint(2, 8))
        else:  # sign with text (distractor)
            sw, sh = rng.uniform(30, 160), rng.uniform(15, 60)
            x, y = rng.uniform(0, W - sw), rng.uniform(0, H - sh)
            d.rectangle([x, y, x + sw, y + sh], fill=_rand_color(rng) + (255,))
            _draw_text_fit(d, rng, "".join(rng.choice(LETTERS + DIGITS + " ") for _ in range(rng.randint(3, 9))),
                           rng.choice(LABEL_FONTS), (x + 2, y + 2, x + sw - 2, y + sh - 2), _rand_color(rng))
    return img, horizon


def _draw_car(rng, img, cx, by, cw):
    """Draw a car-like shape (rear/front view) with bottom at `by`. Returns plate anchor and body."""
    d = ImageDraw.Draw(img, "RGBA")
    chh = cw * rng.uniform(0.55, 0.8)
    top = by - chh
    paint = rng.choice([(235, 235, 235), (175, 178, 182), (25, 25, 30), (130, 20, 25), (25, 45, 110),
                        (95, 95, 100), (205, 195, 175), (60, 80, 60), _rand_color(rng)])
    dark = _mix(paint, (0, 0, 0), 0.35)
    # wheels
    ww = cw * 0.14
    for wx in (cx - cw * 0.38, cx + cw * 0.38):
        d.rectangle([wx - ww / 2, by - chh * 0.25, wx + ww / 2, by], fill=(20, 20, 20, 255))
    # body lower part
    body_top = top + chh * rng.uniform(0.38, 0.5)
    d.rounded_rectangle([cx - cw / 2, body_top, cx + cw / 2, by - chh * 0.08], radius=int(cw * 0.06),
                        fill=paint + (255,))
    # cabin + glass
    d.polygon([(cx - cw * 0.42, body_top), (cx - cw * 0.32, top), (cx + cw * 0.32, top), (cx + cw * 0.42, body_top)],
              fill=paint + (255,))
    d.polygon([(cx - cw * 0.37, body_top - chh * 0.03), (cx - cw * 0.29, top + chh * 0.05),
               (cx + cw * 0.29, top + chh * 0.05), (cx + cw * 0.37, body_top - chh * 0.03)],
              fill=_rand_color(rng, 10, 90) + (255,))
    # lights
    lc = rng.choice([(200, 30, 30), (240, 240, 210), (230, 140, 40)])
    ly = body_top + chh * 0.08
    for lx in (cx - cw * 0.4, cx + cw * 0.4):
        d.rounded_rectangle([lx - cw * 0.07, ly, lx + cw * 0.07, ly + chh * 0.1], radius=3, fill=lc + (255,))
    # grille / trunk line
    if rng.random() < 0.6:
        d.rectangle([cx - cw * 0.22, ly, cx + cw * 0.22, ly + chh * 0.1], fill=_mix(paint, (0, 0, 0), 0.6) + (255,))
        for k in range(3):
            yy = ly + chh * 0.025 * (k + 1)
            d.line([cx - cw * 0.22, yy, cx + cw * 0.22, yy], fill=_mix(paint, (255, 255, 255), 0.3) + (255,))
    # bumper
    bump_y = by - chh * rng.uniform(0.2, 0.28)
    d.rectangle([cx - cw / 2, bump_y, cx + cw / 2, bump_y + chh * 0.1], fill=dark + (255,))
    if rng.random() < 0.3:  # badge text distractor on body
        _draw_text_fit(d, rng, rng.choice(["SPORT", "HYBRID", "LIMITED", "4x4", "GT", "XLT"]),
                       rng.choice(LABEL_FONTS), (cx + cw * 0.15, ly + chh * 0.12, cx + cw * 0.4, ly + chh * 0.2),
                       _rand_color(rng, 150, 255))
    plate_cy = (ly + chh * 0.1 + bump_y + chh * 0.05) / 2
    return plate_cy


def render_scene(rng, W=640, H=480, plate_w_range=(26, 170), n_plates=1, quality=None):
    """A synthetic scene with `n_plates` car(s)+plate(s). Returns (PIL RGB, [(text,(x,y,w,h))])."""
    img, horizon = _scene_background(rng, W, H)
    items = []
    boxes = []
    for _ in range(n_plates):
        for _attempt in range(10):
            pw = math.exp(rng.uniform(math.log(plate_w_range[0]), math.log(plate_w_range[1])))
            cw = pw / rng.uniform(0.17, 0.3)
            cx = rng.uniform(pw, W - pw)
            by = rng.uniform(max(horizon, cw * 0.75), H + cw * 0.1)
            cand = (cx - cw / 2, by - cw * 0.8, cx + cw / 2, by)
            if all(cand[2] < b[0] or cand[0] > b[2] or cand[3] < b[1] or cand[1] > b[3] for b in boxes):
                break
        boxes.append(cand)
        plate_cy = _draw_car(rng, img, cx, by, cw)
        text = random_plate_text(rng)
        plate = render_plate(rng, text)
        ph = pw * plate.height / plate.width
        quad = _warp_quad(rng, pw, ph, cx + rng.uniform(-0.08, 0.08) * cw, plate_cy, max_rot=6, max_persp=0.12)
        box = composite_plate(rng, img, plate, quad)
        x, y, w, h = box
        # clip to image
        x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
        if x1 - x0 > 4 and y1 - y0 > 4:
            items.append((text, (x0, y0, x1 - x0, y1 - y0)))
    img = photometric(rng, img, strength=0.6)
    if quality is not None:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality)
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img, items


def paste_plate_into(rng, img, forbid=None, pw_range=(26, 170)):
    """Composite one synthetic plate (with a car-texture surround) into PIL RGB `img` (in place copy),
    avoiding the box `forbid` (x, y, w, h). Returns (img, (text, box)) or None."""
    W, H = img.size
    img = img.copy()
    for _ in range(20):
        pw = math.exp(rng.uniform(math.log(pw_range[0]), math.log(min(pw_range[1], W * 0.5))))
        ph = pw * rng.uniform(0.46, 0.56)
        cx, cy = rng.uniform(pw, W - pw), rng.uniform(ph * 2, H - ph * 2)
        bx = (cx - pw * 1.2, cy - ph * 1.5, cx + pw * 1.2, cy + ph * 1.5)
        if forbid is not None:
            fx, fy, fw, fh = forbid
            if not (bx[2] < fx or bx[0] > fx + fw or bx[3] < fy or bx[1] > fy + fh):
                continue
        text = random_plate_text(rng)
        plate = render_plate(rng, text)
        if rng.random() < 0.5:  # surround of car paint
            sw, sh = int(pw * rng.uniform(1.3, 2.5)), int(ph * rng.uniform(1.5, 3))
            img.paste(car_texture(rng, sw, sh), (int(cx - sw / 2), int(cy - sh / 2)))
        quad = _warp_quad(rng, pw, plate.height * pw / plate.width, cx, cy, max_rot=6, max_persp=0.12)
        box = composite_plate(rng, img, plate, quad)
        return img, (text, box)
    return None


# ----------------------------------------------------------------------------- CLI
def write_samples(out_dir, n=12, seed=20261203):
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        W, H = 640, 480
        img, items = render_scene(rng, W, H, plate_w_range=(70, 150), n_plates=1)
        name = f"synth_{i:02d}.jpg"
        q = 88
        while True:
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=q)
            if buf.tell() < 78_000 or q <= 40:
                break
            q -= 6
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(buf.getvalue())
        text, (x, y, w, h) = items[0]
        rows.append(f"{name},{text},{x},{y},{w},{h}")
    with open(os.path.join(out_dir, "labels.csv"), "w") as f:
        f.write("file,plate,x,y,w,h\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--samples":
        write_samples(sys.argv[2])
    elif len(sys.argv) >= 2 and sys.argv[1] == "--preview":
        rng = random.Random(1)
        tiles = [Image.fromarray(render_reader_sample(rng)[0]) for _ in range(48)]
        sheet = Image.new("L", (128 * 4, 32 * 12))
        for i, t in enumerate(tiles):
            sheet.paste(t, ((i % 4) * 128, (i // 4) * 32))
        sheet.save("/tmp/reader_preview.png")
        plates = Image.new("RGB", (320 * 3, 180 * 4), (128, 128, 128))
        for i in range(12):
            p = render_plate(rng, random_plate_text(rng))
            plates.paste(p.convert("RGB"), ((i % 3) * 320, (i // 3) * 180), p.split()[3])
        plates.save("/tmp/plates_preview.png")
        sc, items = render_scene(rng)
        ImageDraw.Draw(sc).rectangle([items[0][1][0], items[0][1][1], items[0][1][0] + items[0][1][2],
                                      items[0][1][1] + items[0][1][3]], outline=(255, 0, 0))
        sc.save("/tmp/scene_preview.png")
        print(items)
    else:
        print(__doc__)
