#!/usr/bin/env python3
"""Turns openappsec's mgm-web-attack-payloads (the WAF comparison project's attack set) into a
corpus for `examples/waf-eval.rs`.

    git clone https://github.com/openappsec/mgm-web-attack-payloads /tmp/mgm
    python3 mgm.py /tmp/mgm mgm.jsonl
    cargo run --release -p meridian-edge --example waf-eval -- mgm.jsonl --paranoia 1

Each line of `nuclei/payloads/<kind>/true-positives.txt` is an attack and each line of
`false-positives.txt` a benign text, sent as its nuclei templates send them: as the query
argument `tp_param` of a GET and as the urlencoded form field of a POST, query-escaped with
`%25` turned back into `%` (payloads that arrive encoded stay as they are).
"""
import base64
import json
import pathlib
import sys
import urllib.parse

HEADERS = [
    ["Host", "shop.example"],
    ["User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:105.0) Gecko/20100101 Firefox/105.0"],
]


def main():
    checkout, out = pathlib.Path(sys.argv[1]), open(sys.argv[2], "w")
    written = 0
    for path in sorted((checkout / "nuclei" / "payloads").glob("*/*.txt")):
        attack = path.stem == "true-positives"
        for index, line in enumerate(path.read_text(errors="surrogateescape").splitlines()):
            if not line.strip():
                continue
            value = urllib.parse.quote_plus(line, safe="", errors="surrogateescape")
            value = value.replace("%25", "%")
            label = "%s/%s" % (path.parent.name, "attack" if attack else "benign")
            for method in ("GET", "POST"):
                body = "tp_param=" + value if method == "POST" else ""
                headers = [list(h) for h in HEADERS]
                if method == "POST":
                    headers += [["Origin", "https://shop.example"],
                                ["Content-Type", "application/x-www-form-urlencoded"]]
                out.write(json.dumps({
                    "id": "%s#%d/%s" % (label, index, method),
                    "category": label,
                    "attack": attack,
                    "method": method,
                    "uri": "/?tp_param=" + value if method == "GET" else "/",
                    "headers": headers,
                    "body_b64": base64.b64encode(body.encode()).decode(),
                }) + "\n")
                written += 1
    print("%d requests" % written, file=sys.stderr)


if __name__ == "__main__":
    main()
