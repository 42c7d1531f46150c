#!/usr/bin/env python3
"""Turns the OWASP CRS regression tests into a corpus of attacks for `examples/waf-eval.rs`.

    git clone https://github.com/coreruleset/coreruleset /tmp/coreruleset
    python3 crs.py /tmp/coreruleset crs.jsonl
    cargo run --release -p meridian-edge --example waf-eval -- crs.jsonl --paranoia 1

Every test of an attack rule (913 scanners, 930-944: file access and inclusion, command, PHP,
generic, XSS, SQL, session fixation, Java) that expects its rule to fire becomes one attack,
labelled with that rule's paranoia level (from the rules' `paranoia-level/N` tags), so
`--paranoia N` counts the attacks that level is meant to catch. Tests that send a raw or
encoded request are left out. The tests that expect a rule *not* to fire are not benign
traffic (many are attacks for another rule), so they are not used for false positives.
Needs PyYAML.
"""
import base64
import json
import pathlib
import re
import sys

import yaml

FAMILIES = {913, *range(930, 945)}


def paranoia_levels(checkout):
    levels = {}
    for path in (checkout / "rules").glob("*.conf"):
        for block in re.split(r"\n(?=SecRule|SecAction)", path.read_text()):
            rule, level = re.search(r"id:(\d+)", block), re.search(r"paranoia-level/(\d)", block)
            if rule and level:
                levels[int(rule.group(1))] = int(level.group(1))
    return levels


def main():
    checkout, out = pathlib.Path(sys.argv[1]), open(sys.argv[2], "w")
    levels = paranoia_levels(checkout)
    written, skipped = 0, 0
    for path in sorted((checkout / "tests" / "regression" / "tests").rglob("*.yaml")):
        if not re.fullmatch(r"\d{6}", path.stem) or int(path.stem[:3]) not in FAMILIES:
            continue
        rule = int(path.stem)
        if rule not in levels:
            continue
        try:
            tests = yaml.safe_load(path.read_text()).get("tests", [])
        except yaml.YAMLError:
            skipped += 1
            continue
        for test in tests:
            for stage in test.get("stages", []):
                stage = stage.get("stage", stage)
                sent = stage.get("input", {})
                expected = ((stage.get("output") or {}).get("log") or {}).get("expect_ids") or []
                if rule not in expected:
                    continue
                if "encoded_request" in sent or "raw_request" in sent:
                    skipped += 1
                    continue
                headers = [[k, str(v)] for k, v in (sent.get("headers") or {}).items()]
                data = sent.get("data") or ""
                if isinstance(data, list):
                    data = "\r\n".join(data)
                if data and not any(k.lower() == "content-type" for k, _ in headers):
                    headers.append(["Content-Type", "application/x-www-form-urlencoded"])
                out.write(json.dumps({
                    "id": "%d-%s" % (rule, test.get("test_id")),
                    "category": "%s PL%d" % (path.stem[:3], levels[rule]),
                    "pl": levels[rule],
                    "attack": True,
                    "method": sent.get("method", "GET"),
                    "uri": sent.get("uri", "/"),
                    "headers": headers,
                    "body_b64": base64.b64encode(data.encode("utf-8", "surrogateescape")).decode(),
                }) + "\n")
                written += 1
    print("%d requests, %d left out" % (written, skipped), file=sys.stderr)


if __name__ == "__main__":
    main()
