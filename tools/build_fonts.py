"""Build the wall's Chinese web font: WOFF2 slices of Noto Sans CJK SC by unicode-range, and their @font-face CSS."""

# Build-time only: the app never runs this, and nothing here is fetched at run time.
#   apt-get install fonts-noto-cjk               # the open font (SIL OFL 1.1), Debian's 1:20220127+repack1-1
#   .venv/bin/pip install -r requirements-dev.txt  # fonttools (the subsetter) and brotli (WOFF2)
#   .venv/bin/python tools/build_fonts.py        # or: make fonts
# Writes assets/fonts/*.woff2 and assets/fonts.css; commit both. The same source and the same fonttools and
# brotli give the same bytes (the source's own timestamp is kept, nothing is dated by the build).

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
OUT = ASSETS / "fonts"
CSS = ASSETS / "fonts.css"
FAMILY = "Panorama Sans SC"  # the subsets' own name: a Modified Version under the OFL, not "Noto Sans CJK SC"
SOURCE_DIR = Path("/usr/share/fonts/opentype/noto")
# (file in fonts-noto-cjk, its sha256, CSS weight): the builds this repository's slices came from.
SOURCES = (
    ("NotoSansCJK-Regular.ttc", "b76b0433203017ca80401b2ee0dd69350349871c4b19d504c34dbdd80541690a", 400),
    ("NotoSansCJK-Bold.ttc", "faa5f3656a78b2e2d450d27fe8382c778bc2b6bb5ea29c986664a6a435056ceb", 700),
)
SC_FACE = "NotoSansCJKsc"  # the PostScript name's start of the Simplified Chinese face in the collections

# The product's own text: what its pages, its city pack and its simulator say. Every CJK character in these
# files goes into the first slice, the one the wall preloads.
PRODUCT_TEXT = ("dashboard/**/*.py", "dashboard/**/*.yaml", "dashboard/**/*.geojson", "dashboard/**/*.html",
                "layouts/*.py", "callbacks/*.py", "feeds/*.py", "assets/*.js")
# What the browser writes itself in Chinese (dates and times from Intl and toLocaleString, the wall's clock).
BROWSER_TEXT = "年月日时分秒星期一二三四五六七八九十天上午下午"
# CJK symbols and punctuation, CJK ideographs, full-width forms: what a Latin system font lacks.
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
SLICE_CHARS = 800  # ideographs per slice past the first: about 150 KB of WOFF2 each


def product_chars(root: Path = ROOT) -> set[str]:
    """Return every CJK character written in the product's own sources under ``root``."""
    chars = set(BROWSER_TEXT)
    for pattern in PRODUCT_TEXT:
        for path in sorted(root.glob(pattern)):
            chars |= set(_CJK.findall(path.read_text(encoding="utf-8")))
    return chars


def gb2312_rows(first: int, last: int) -> list[str]:
    """Return GB 2312's characters in rows ``first``..``last`` (row 16-55: level 1, 56-87: level 2), in order."""
    out = []
    for row in range(first, last + 1):
        for cell in range(1, 95):
            try:
                out.append(bytes([0xA0 + row, 0xA0 + cell]).decode("gb2312"))
            except UnicodeDecodeError:
                pass  # unassigned cells
    return out


def slices(product: set[str]) -> list[tuple[str, list[str]]]:
    """Return the slices as (name, characters): the product's text, GB 2312's symbols, then its ideographs."""
    ui = sorted(product)
    taken = set(ui)
    symbols = [c for c in gb2312_rows(1, 9) if _CJK.match(c) and c not in taken]
    out = [("ui", ui), ("symbols", symbols)]
    taken |= set(symbols)
    for level, (first, last) in (("a", (16, 55)), ("b", (56, 87))):
        rest = [c for c in gb2312_rows(first, last) if c not in taken]
        for i in range(0, len(rest), SLICE_CHARS):
            out.append((f"{level}{i // SLICE_CHARS}", rest[i:i + SLICE_CHARS]))
    return out


def unicode_range(chars: list[str]) -> str:
    """Return the CSS unicode-range of ``chars``, runs of consecutive code points written as ranges."""
    points = sorted({ord(c) for c in chars})
    runs: list[list[int]] = []
    for p in points:
        if runs and runs[-1][1] == p - 1:
            runs[-1][1] = p
        else:
            runs.append([p, p])
    return ", ".join(f"U+{a:X}" if a == b else f"U+{a:X}-{b:X}" for a, b in runs)


def load_source(path: Path):
    """Return the Simplified Chinese face of a Noto Sans CJK collection, renamed to FAMILY."""
    from fontTools.ttLib import TTCollection

    collection = TTCollection(str(path))
    font = next(f for f in collection.fonts if f["name"].getDebugName(6).startswith(SC_FACE))
    font.recalcTimestamp = False  # the same bytes on every build
    return font


def rename(font, weight: int) -> None:
    """Give the subset FAMILY's names; the copyright, licence and credits of the original stay as they are."""
    style = "Bold" if weight >= 700 else "Regular"
    name = font["name"]
    for record in list(name.names):
        if record.nameID in (1, 3, 4, 6, 16, 17, 18, 21, 22, 25):
            name.removeNames(nameID=record.nameID)
    name.setName(FAMILY, 1, 3, 1, 0x409)
    name.setName(style, 2, 3, 1, 0x409)
    name.setName(f"{FAMILY} {style}", 4, 3, 1, 0x409)
    name.setName(f"PanoramaSansSC-{style}", 6, 3, 1, 0x409)
    name.setName(f"{FAMILY} {style}; subset of Noto Sans CJK SC {font['name'].getDebugName(5)}", 3, 3, 1, 0x409)


def subset(path: Path, chars: list[str], weight: int) -> bytes:
    """Return WOFF2 of the source's SC face cut down to ``chars``, without vertical metrics or hints."""
    import io

    from fontTools import subset as fs

    font = load_source(path)
    options = fs.Options()
    options.flavor = "woff2"
    options.hinting = False  # sizes on the wall are large; hints are a fifth of the bytes
    options.desubroutinize = True  # brotli packs the plain charstrings smaller than the subroutines
    options.drop_tables += ["vhea", "vmtx", "VORG", "BASE"]  # horizontal text only
    options.name_IDs = ["*"]
    options.name_languages = [0x409]
    subsetter = fs.Subsetter(options)
    subsetter.populate(unicodes=[ord(c) for c in chars])
    subsetter.subset(font)
    rename(font, weight)
    out = io.BytesIO()
    font.flavor = "woff2"
    font.save(out)
    return out.getvalue()


def face_css(file: str, weight: int, chars: list[str]) -> str:
    """Return the @font-face of one slice; a system copy of the original is used first, where there is one."""
    style = "Bold" if weight >= 700 else "Regular"
    local = (f'local("Noto Sans CJK SC{" Bold" if weight >= 700 else ""}"), local("NotoSansCJKsc-{style}"), '
             f'local("Source Han Sans SC{" Bold" if weight >= 700 else ""}"), local("SourceHanSansSC-{style}")')
    return (f'@font-face {{\n  font-family: "{FAMILY}";\n  font-style: normal;\n  font-weight: {weight};\n'
            f"  font-display: swap;\n  src: {local}, url(fonts/{file}) format(\"woff2\");\n"
            f"  unicode-range: {unicode_range(chars)};\n}}\n")


HEADER = """/* Generated by tools/build_fonts.py: do not edit. The wall's Chinese on machines without a CJK system font.
   {family}: subsets of Noto Sans CJK SC 2.004 (c) 2014-2021 Adobe (http://www.adobe.com/), SIL Open Font
   License 1.1 (assets/fonts/OFL.txt, assets/fonts/ATTRIBUTION.md). A browser fetches a slice only when the page
   shows one of its characters and no font named before it in the page's font-family has that character. */
"""


def build(source_dir: Path = SOURCE_DIR, check: bool = True) -> list[tuple[str, int, int]]:
    """Write every slice and fonts.css; return (file, weight, bytes) of each slice."""
    parts = slices(product_chars())
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.woff2"):
        old.unlink()
    css = [HEADER.format(family=FAMILY)]
    written = []
    for filename, digest, weight in SOURCES:
        path = source_dir / filename
        if check and hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            sys.exit(f"{path} is not the font these slices were built from (pass --any-source to build anyway)")
        for name, chars in parts:
            data = subset(path, chars, weight)
            file = f"panorama-sc-{weight}-{name}.{hashlib.sha256(data).hexdigest()[:16]}.woff2"
            (OUT / file).write_bytes(data)
            css.append(face_css(file, weight, chars))
            written.append((file, weight, len(data)))
    CSS.write_text("\n".join(css), encoding="utf-8")
    return written


def main(argv: list[str] | None = None) -> None:
    """Build the slices from Debian's fonts-noto-cjk and print their sizes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source-dir", type=Path, default=SOURCE_DIR, help="where NotoSansCJK-*.ttc are")
    parser.add_argument("--any-source", action="store_true", help="build from fonts whose sha256 differs")
    args = parser.parse_args(argv)
    for file, weight, size in build(args.source_dir, check=not args.any_source):
        print(f"{size:>9,} B  {file}")


if __name__ == "__main__":
    main()
