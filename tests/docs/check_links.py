"""Checks the links of the documentation: in README.md and every docs/*.md, each relative markdown link or image
[text](target) must name a file that exists (relative to the page's folder) and, with #anchor, a heading of the
page it points to (GitHub's anchors: lowercase, punctuation other than - and _ dropped, spaces to -, a repeated
heading -1, -2, ...). http(s):// and mailto: links, and links inside code blocks or inline code, are skipped.
Prints each broken link as FILE:LINE: broken link TARGET; exit 1 on any.
Usage: check_links.py [REPO_ROOT]   (default: the repository this script is in)"""
import glob
import os
import re
import sys
import urllib.parse

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
# "](target)" or "](target "title")", the end of an inline link or image; nested [..] in the text are fine.
INLINE_LINK = re.compile(r"\]\(\s*(<[^>\n]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)"
                         r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>\n]*>|\S+)")
HTML_ANCHOR = re.compile(r"<a\s[^>]*(?:name|id)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
EXTERNAL = re.compile(r"^(?:https?://|mailto:)", re.IGNORECASE)


def strip_inline_code(line):
    """The line with every code span (a run of backticks up to the same run) blanked out."""
    out, i = [], 0
    while i < len(line):
        if line[i] == "`":
            j = i
            while j < len(line) and line[j] == "`":
                j += 1
            ticks = line[i:j]
            end = line.find(ticks, j)
            while end != -1 and end + len(ticks) < len(line) and line[end + len(ticks)] == "`":
                end = line.find(ticks, end + len(ticks) + 1)
            if end == -1:  # an unmatched run is literal text
                out.append(ticks)
                i = j
                continue
            out.append(" " * (end + len(ticks) - i))
            i = end + len(ticks)
        else:
            out.append(line[i])
            i += 1
    return "".join(out)


def prose_lines(text):
    """(line number, line) for each line outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.split("\n"), 1):
        m = FENCE.match(line)
        if fence is None:
            if m:
                fence = m.group(1)
                continue
            yield number, line
        elif (m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence)
              and not line.strip()[len(m.group(1)):].strip()):
            fence = None


def slug(heading):
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images: their text
    text = re.sub(r"<[^>]+>", "", text)  # HTML tags
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path, cache={}):
    """The anchors a markdown file defines: its headings' slugs (repeats numbered) and explicit HTML anchors."""
    if path not in cache:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        found, counts, previous = set(), {}, None
        for _, line in prose_lines(text):
            heading = None
            m = ATX_HEADING.match(line)
            if m:
                heading = m.group(2) or ""
            elif previous is not None and previous.strip() and SETEXT_UNDERLINE.match(line) \
                    and not ATX_HEADING.match(previous) and not previous.lstrip().startswith(("-", "*", "|", ">")):
                heading = previous
            if heading is not None:
                base = slug(heading)
                n = counts.get(base, 0)
                counts[base] = n + 1
                found.add(base if n == 0 else f"{base}-{n}")
            for a in HTML_ANCHOR.finditer(line):
                found.add(a.group(1))
            previous = line
        cache[path] = found
    return cache[path]


def link_targets(text):
    """(line number, target) for each inline link, image and reference definition outside code."""
    for number, line in prose_lines(text):
        line = strip_inline_code(line)
        m = REFERENCE_DEFINITION.match(line)
        if m:
            yield number, m.group(1)
            continue
        for m in INLINE_LINK.finditer(line):
            yield number, m.group(1)


def broken(page, target):
    """Why `target`, linked from `page`, does not resolve; None when it does."""
    if target.startswith("<") and target.endswith(">"):
        target = target[1:-1]
    if not target or EXTERNAL.match(target):
        return None
    path_part, _, anchor = target.partition("#")
    path_part = urllib.parse.unquote(path_part)
    anchor = urllib.parse.unquote(anchor)
    destination = os.path.normpath(os.path.join(os.path.dirname(page), path_part)) if path_part else page
    if not os.path.exists(destination):
        return "no such file"
    if anchor:
        if not destination.endswith(".md") or os.path.isdir(destination):
            return "an anchor into a file that is not markdown"
        if anchor not in anchors(destination):
            return "no such heading"
    return None


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    root = os.path.normpath(root)
    pages = [os.path.join(root, "README.md")] + sorted(glob.glob(os.path.join(root, "docs", "*.md")))
    failures = 0
    for page in pages:
        if not os.path.exists(page):
            print(f"{os.path.relpath(page, root)}:0: broken link (the page itself is missing)")
            failures += 1
            continue
        with open(page, encoding="utf-8") as f:
            text = f.read()
        for number, target in link_targets(text):
            if broken(page, target):
                print(f"{os.path.relpath(page, root)}:{number}: broken link {target}")
                failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
