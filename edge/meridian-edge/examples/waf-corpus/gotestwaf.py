#!/usr/bin/env python3
"""Turns gotestwaf's test cases into a corpus for `examples/waf-eval.rs`.

    git clone https://github.com/wallarm/gotestwaf /tmp/gotestwaf
    python3 gotestwaf.py /tmp/gotestwaf gotestwaf.jsonl
    cargo run --release -p meridian-edge --example waf-eval -- gotestwaf.jsonl --paranoia 1

Every payload is sent once per encoder and placeholder its file names, shaped the way
gotestwaf's Go client sends it (a random parameter or header name, the JSON and multipart
wrappers). `false-pos/` payloads are benign; everything else is an attack. The 8 KB to 128 KB
"community" files, raw requests, GraphQL and gRPC are left out. Needs PyYAML.
"""
import base64
import json
import pathlib
import random
import sys
import urllib.parse

import yaml

SHOPPER = [
    ["Host", "shop.example"],
    ["User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"],
    ["Accept", "*/*"],
]


def name():
    return "%08x" % random.getrandbits(32)


def encode(encoder, payload):
    if encoder == "Plain":
        return payload
    if encoder == "URL":  # Go's url.PathEscape
        return urllib.parse.quote(payload, safe="!$&'()*+,;=:@~-._")
    if encoder in ("Base64", "Base64Flat"):
        encoded = base64.b64encode(payload.encode()).decode()
        return encoded if encoder == "Base64" else encoded.replace("=", "")
    if encoder == "JSUnicode":
        units = payload.encode("utf-16-be")
        return "".join("\\u%02x%02x" % (units[i], units[i + 1]) for i in range(0, len(units), 2))
    if encoder == "XMLEntity":  # Go's xml.Encoder on a string
        for raw, entity in [("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&#34;"),
                            ("'", "&#39;"), ("\t", "&#x9;"), ("\n", "&#xA;"), ("\r", "&#xD;")]:
            payload = payload.replace(raw, entity)
        return "<string>" + payload + "</string>"
    return None


def request_target(text):
    """What an HTTP client puts on the request line: bytes not allowed there percent-encoded."""
    return urllib.parse.quote(text, safe="!$&'()*+,;=:@~-._/?%[]")


def request(placeholder, payload):
    """(method, target, headers, body) for one placeholder, or None where it cannot be sent."""
    headers = [list(h) for h in SHOPPER]
    if placeholder == "URLParam":
        return "GET", "/?" + name() + "=" + request_target(payload), headers, ""
    if placeholder == "URLPath":
        return "GET", "/" + request_target(payload), headers, ""
    if placeholder in ("Header", "UserAgent"):
        if any(ord(c) < 32 and c != "\t" for c in payload):
            return None
        if placeholder == "UserAgent":
            headers = [h for h in headers if h[0] != "User-Agent"] + [["User-Agent", payload]]
        else:
            headers.append(["X-" + name(), payload])
        return "GET", "/", headers, ""
    body_types = {
        "JSONRequest": "application/json",
        "JSONBody": "application/json",
        "HTMLForm": "application/x-www-form-urlencoded",
        "XMLBody": "application/xml",
        "SOAPBody": "text/xml",
    }
    if placeholder == "JSONRequest":
        body = '{"test": true, "%s": "%s"}' % (name(), encode("JSUnicode", payload))
    elif placeholder == "HTMLForm":
        body = name() + "=" + payload
    elif placeholder == "SOAPBody":
        element = name()
        body = ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv='
                '"http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><%s>%s</%s>'
                "</soapenv:Body></soapenv:Envelope>" % (element, payload, element))
    elif placeholder == "HTMLMultipartForm":
        boundary = "b0undary" + name()
        body = ('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n--%s--\r\n'
                % (boundary, name(), payload, boundary))
        headers.append(["Content-Type", "multipart/form-data; boundary=" + boundary])
        return "POST", "/", headers, body
    elif placeholder in ("JSONBody", "XMLBody", "RequestBody"):
        body = payload
    else:
        return None
    if placeholder in body_types:
        headers.append(["Content-Type", body_types[placeholder]])
    return "POST", "/", headers, body


def load(path):
    text = path.read_text()
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        # A few files use \' inside double quotes, which YAML does not allow.
        return yaml.safe_load(text.replace("\\'", "'"))


def main():
    checkout, out = pathlib.Path(sys.argv[1]), open(sys.argv[2], "w")
    random.seed(1)
    written, skipped = 0, 0
    for path in sorted((checkout / "testcases").rglob("*.yml")):
        if path.name.startswith("community-") and "kb-" in path.name:
            continue
        case = load(path)
        if not case or "payload" not in case:
            continue
        group = path.parent.name
        for index, payload in enumerate(case["payload"]):
            for encoder in case.get("encoder") or ["Plain"]:
                encoded = encode(encoder, str(payload))
                for placeholder in case.get("placeholder") or []:
                    placeholder = placeholder if isinstance(placeholder, str) else next(iter(placeholder))
                    built = encoded is not None and request(placeholder, encoded)
                    if not built:
                        skipped += 1
                        continue
                    method, target, headers, body = built
                    out.write(json.dumps({
                        "id": "%s#%d/%s/%s" % (path.name, index, encoder, placeholder),
                        "category": "%s/%s" % (group, path.stem),
                        "attack": group != "false-pos",
                        "method": method,
                        "uri": target,
                        "headers": headers,
                        "body_b64": base64.b64encode(body.encode()).decode(),
                    }) + "\n")
                    written += 1
    print("%d requests, %d left out" % (written, skipped), file=sys.stderr)


if __name__ == "__main__":
    main()
