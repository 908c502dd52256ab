"""Event files whose bytes sit on the edges a block reader has (issue 18's adversary): a character, a CRLF or
an invalid byte across the 1 MiB block boundary, lines of MAX_LINE_CHARS characters or bytes give or take
one, a line longer than four blocks with no line feed, bare carriage returns, no final line feed, a BOM then
a carriage return. Each file is a valid simulated day's lines around the edge, so the findings show it.

    PYTHONPATH=<main> python tests/throughput_diff/reader_edges.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.throughput_diff.gen_inputs import LICENCES, sim_day

BLOCK = 1 << 20
MAX = 1 << 20  # MAX_LINE_CHARS


def _pad_to(prefix: bytes, at: int, lines: list[bytes]) -> bytes:
    """``prefix`` then valid lines, then a filler line sized so that the next byte written is at ``at``."""
    out = bytearray(prefix)
    for line in lines:
        if len(out) + len(line) + 1 > at - 200:
            break
        out += line + b"\n"
    filler = at - len(out) - 1  # a JSON-ish blank-padded line ending right before ``at``
    out += b" " * max(filler, 0) + b"\n"
    return bytes(out)


def edges(day: list[str]) -> dict[str, bytes]:
    lines = [line.encode() for line in day]
    head, tail = lines[: len(lines) // 2], lines[len(lines) // 2 :]
    body = b"\n".join(tail) + b"\n"
    one = lines[5]
    files: dict[str, bytes] = {}
    for shift in range(-3, 4):
        at = BLOCK + shift
        base = _pad_to(b"", at - (len(one) - 1) - 12, head)
        # a line whose multibyte character straddles the boundary
        line = one[:-1] + b',"note":"' + "é€😀".encode() * 4 + b'"}'
        files[f"straddle{shift:+d}"] = base + line + b"\n" + body
        # a CRLF or a bare CR on the boundary, an invalid byte on it
        pad = _pad_to(b"", at, head)
        files[f"crlf{shift:+d}"] = pad[:-1] + b"\r\n" + one + b"\r\n" + body
        files[f"barecr{shift:+d}"] = pad[:-1] + b"\r" + one + b"\r" + one + b"\n" + body
        files[f"badbyte{shift:+d}"] = pad + one[:20] + b"\xe2\x82" + b"\n" + one[:-1] + b',"x":"\xf0\x9f"}\n' + body
    filler = b'{"x":"'
    for size in (MAX - 2, MAX - 1, MAX, MAX + 1, MAX + 2):
        text = filler + b"a" * (size - len(filler) - 2) + b'"}'
        files[f"long{size - MAX:+d}"] = b"\n".join(head[:50]) + b"\n" + text + b"\n" + body
        files[f"longcr{size - MAX:+d}"] = b"\n".join(head[:50]) + b"\n" + text + b"\r\n" + body
        # the same length in characters written with two-byte ones (bytes >= MAX, characters not)
        wide = filler + "é".encode() * (size - len(filler) - 2) + b'"}'
        files[f"wide{size - MAX:+d}"] = b"\n".join(head[:50]) + b"\n" + wide + b"\n" + body
        files[f"longlast{size - MAX:+d}"] = b"\n".join(head[:50]) + b"\n" + text
    huge = b'{"x":"' + b"b" * (5 * BLOCK) + b'"}'
    files["huge"] = b"\n".join(head[:50]) + b"\n" + huge + b"\n" + body
    files["hugecr"] = b"\n".join(head[:50]) + b"\n" + huge + b"\r" + one + b"\r\n" + body
    files["hugelast"] = b"\n".join(head[:50]) + b"\n" + huge
    files["hugecrmid"] = b"\n".join(head[:50]) + b"\n" + huge[: 3 * BLOCK] + b"\r" + huge[3 * BLOCK :] + b"\n" + body
    files["nolf"] = b"\n".join(lines)
    files["endcr"] = b"\n".join(lines) + b"\r"
    files["bomcr"] = b"\xef\xbb\xbf\r" + b"\n".join(lines) + b"\n"
    files["bomlate"] = b"\n\n  \xef\xbb\xbf" + b"\n".join(lines) + b"\n"
    files["bomsecond"] = lines[0] + b"\n\xef\xbb\xbf" + b"\n".join(lines[1:]) + b"\n"
    files["crs"] = b"\r".join(lines) + b"\r"
    files["mixedends"] = b"".join(line + [b"\n", b"\r\n", b"\r", b"\n\r"][i % 4] for i, line in enumerate(lines))
    files["nul"] = b"\n".join(lines[:100]) + b"\n\x00\n" + b"\n".join(lines[100:]) + b"\n"
    files["seps"] = b"\n".join(lines[:50]) + b"\n" + one[:-1] + ',"s":"\u2028\x0b\x0c\x1c\x85"}'.encode() + b"\n"
    files["utf16"] = b"\xff\xfe" + "\n".join(day[:200]).encode("utf-16-le")
    files["empty"] = b""
    files["blank"] = b"\n\n \n\t\n"
    return files


def main() -> None:
    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    day = sim_day(LICENCES["dn"], 11, 60, 6000)
    for name, data in edges(day).items():
        (folder / f"dn-edge-{name}.jsonl").write_bytes(data)
    print(len(list(folder.glob("*.jsonl"))), "files")


if __name__ == "__main__":
    main()
