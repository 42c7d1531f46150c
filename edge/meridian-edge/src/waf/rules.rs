//! The rules: what each one looks for, where, at which paranoia level and with which weight.
//!
//! Rule ids follow the OWASP Core Rule Set's numbering, so an operator who knows the CRS reads
//! our logs and exclusions the same way: 913 scanners, 920 protocol enforcement, 921 protocol
//! attacks, 922 multipart, 930 local file inclusion, 931 remote file inclusion, 932 remote
//! command execution, 933 PHP, 934 generic (Node.js, SSRF, prototype pollution, templates),
//! 941 XSS, 942 SQL injection, 943 session fixation, 944 Java. The patterns are our own; where a
//! rule has a CRS counterpart it takes that rule's id and level, and our additions take ids
//! from 9x9xx within their family's block.
//!
//! Value rules match one [`Form`](Form) of a value (see [`super::normalize::Views`]) from the
//! [`Targets`] they name; protocol rules (`Check::Request`) are evaluated once per request by the
//! engine.

use std::ops::BitOr;

/// Where a value came from; a rule names the places it inspects.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Targets(u16);

impl Targets {
    pub const PATH: Targets = Targets(1);
    pub const ARGS: Targets = Targets(1 << 1);
    pub const ARG_NAMES: Targets = Targets(1 << 2);
    pub const COOKIES: Targets = Targets(1 << 3);
    pub const COOKIE_NAMES: Targets = Targets(1 << 4);
    /// Every inspected header, User-Agent and Referer included.
    pub const HEADERS: Targets = Targets(1 << 5);
    pub const USER_AGENT: Targets = Targets(1 << 6);
    pub const REFERER: Targets = Targets(1 << 7);
    /// Multipart file names.
    pub const FILES: Targets = Targets(1 << 8);
    /// A body inspected whole (XML, or a kind the WAF does not take apart).
    pub const BODY: Targets = Targets(1 << 9);

    /// Where injection payloads reach an application.
    pub const INPUT: Targets = Targets(
        Self::PATH.0
            | Self::ARGS.0
            | Self::ARG_NAMES.0
            | Self::COOKIES.0
            | Self::COOKIE_NAMES.0
            | Self::HEADERS.0
            | Self::FILES.0,
    );

    pub fn contains(self, other: Targets) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn intersects(self, other: Targets) -> bool {
        self.0 & other.0 != 0
    }
}

impl BitOr for Targets {
    type Output = Targets;
    fn bitor(self, rhs: Targets) -> Targets {
        Targets(self.0 | rhs.0)
    }
}

/// The anomaly score a match adds (the CRS' weights).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Severity {
    Critical,
    Error,
    Warning,
    Notice,
}

impl Severity {
    pub fn score(self) -> u32 {
        match self {
            Severity::Critical => 5,
            Severity::Error => 4,
            Severity::Warning => 3,
            Severity::Notice => 2,
        }
    }
}

/// Which view of a value a pattern reads.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Form {
    /// As sent, lowercased: for what decoding would hide (encoded traversal, overlong UTF-8).
    Raw,
    Text,
    Sql,
    Cmd,
}

#[derive(Clone, Copy, Debug)]
pub enum Check {
    /// A regular expression (lowercase, ASCII classes) over one form of each targeted value.
    Pattern(Form, &'static str),
    /// libinjection's SQL tokenizer and fingerprints.
    LibinjectionSqli,
    /// libinjection's HTML5 tokenizer.
    LibinjectionXss,
    /// A property of the whole request, checked by the engine.
    Request,
}

#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub id: u32,
    pub paranoia: u8,
    pub severity: Severity,
    pub message: &'static str,
    pub targets: Targets,
    pub check: Check,
}

const fn rule(
    id: u32,
    paranoia: u8,
    severity: Severity,
    message: &'static str,
    targets: Targets,
    check: Check,
) -> Rule {
    Rule {
        id,
        paranoia,
        severity,
        message,
        targets,
        check,
    }
}

use Check::{LibinjectionSqli, LibinjectionXss, Pattern, Request};
use Form::{Cmd, Raw, Sql, Text};
use Severity::{Critical, Notice, Warning};

const T_INPUT: Targets = Targets::INPUT;
const T_ARGS: Targets =
    Targets(Targets::ARGS.0 | Targets::ARG_NAMES.0 | Targets::COOKIES.0 | Targets::BODY.0);
const T_ARGS_PATH: Targets = Targets(T_ARGS.0 | Targets::PATH.0 | Targets::FILES.0);
/// Also headers: command and SQL syntax no header a browser or client sends carries.
const T_ARGS_PATH_HDR: Targets = Targets(T_ARGS_PATH.0 | Targets::HEADERS.0);
/// Also User-Agent and Referer (the CRS' extra targets for some rules).
const T_ARGS_PATH_UA: Targets = Targets(T_ARGS_PATH.0 | Targets::USER_AGENT.0 | Targets::REFERER.0);
const T_NONE: Targets = Targets(0);
const T_ALL: Targets = Targets(T_INPUT.0 | Targets::BODY.0);

/// Protocol rule ids the engine raises itself.
pub mod ids {
    pub const BODY_ON_GET: u32 = 920170;
    pub const BODY_WITHOUT_CONTENT_TYPE: u32 = 920340;
    pub const MISSING_ACCEPT: u32 = 920300;
    pub const MISSING_USER_AGENT: u32 = 920320;
    pub const LIMITS: u32 = 920380;
    pub const CONTENT_TYPE_NOT_ALLOWED: u32 = 920420;
    pub const EXTENSION_RESTRICTED: u32 = 920440;
    pub const HEADER_RESTRICTED: u32 = 920450;
    pub const CHARSET_NOT_ALLOWED: u32 = 920480;
    pub const BACKUP_FILE: u32 = 920500;
    pub const NUL_BYTE: u32 = 920270;
    pub const MULTIPART_FILENAME: u32 = 920120;
    pub const MULTIPART_MALFORMED: u32 = 922100;
    pub const MULTIPART_PART_HEADERS: u32 = 922110;
    pub const NEWLINE_IN_PATH: u32 = 921190;
    /// A CR or LF in an argument name's text view. Checked by the engine rather than as a
    /// pattern: the bare tokens are matched together one per line, and a pattern of its own
    /// would match every line break between them.
    pub const NEWLINE_IN_ARG_NAME: u32 = 921150;
    pub const RFI_PARAMETER: u32 = 931110;
    pub const SESSION_ID_OFF_DOMAIN: u32 = 943110;
    pub const SESSION_ID_NO_REFERER: u32 = 943120;
}

/// Every rule, in id order.
pub static RULES: &[Rule] = &[
    // 913: scanners announce themselves.
    rule(
        913100,
        1,
        Critical,
        "security scanner user agent",
        Targets::USER_AGENT,
        Pattern(
            Text,
            r"\b(?:nikto|sqlmap|nmap|nessus|acunetix|netsparker|w3af|dirbuster|gobuster|wpscan|masscan|zgrab|openvas|arachni|havij|nuclei|whatweb|skipfish|paros|fimap|bsqlbf|commix|xsser|webinspect|appscan|zmeu|morfeus|brutus|dirb|ffuf|feroxbuster|wfuzz|httprint|grabber|pangolin|sqlninja|jaeles|zap/|owasp zap|burp ?suite|metis|wapiti|vega/|webshag|teh forest lobster|jbrofuzz|blackwidow|mysqloit|dotdotpwn|absinthe|crimscanner|nsauditor|struts-pwn|nasl|gootkit|openvasvt|fuzz faster u fool)\b|\b(?:burpcollaborator\.net|oastify\.com|interact\.sh|oast\.(?:pro|live|site|online|fun|me))\b",
        ),
    ),
    // 920: protocol enforcement.
    rule(
        ids::MULTIPART_FILENAME,
        1,
        Critical,
        "multipart file name with quoting characters",
        T_NONE,
        Request,
    ),
    rule(
        ids::BODY_ON_GET,
        1,
        Critical,
        "GET or HEAD request with a body",
        T_NONE,
        Request,
    ),
    rule(
        920260,
        1,
        Warning,
        "Unicode full/half width abuse",
        T_ALL,
        Pattern(Raw, r"%u[fF]{2}[0-9a-fA-F]{2}"),
    ),
    rule(
        ids::NUL_BYTE,
        1,
        Critical,
        "NUL character in request",
        T_NONE,
        Request,
    ),
    rule(
        920272,
        3,
        Critical,
        "character outside printable ASCII in the request",
        Targets(Targets::PATH.0 | Targets::ARGS.0 | Targets::ARG_NAMES.0 | Targets::COOKIES.0),
        Pattern(Text, r"[^\x20-\x7e]"),
    ),
    rule(
        ids::MISSING_ACCEPT,
        2,
        Notice,
        "request missing an Accept header",
        T_NONE,
        Request,
    ),
    rule(
        ids::MISSING_USER_AGENT,
        2,
        Notice,
        "request missing a User-Agent header",
        T_NONE,
        Request,
    ),
    rule(
        ids::BODY_WITHOUT_CONTENT_TYPE,
        1,
        Notice,
        "request body without Content-Type",
        T_NONE,
        Request,
    ),
    rule(
        ids::LIMITS,
        1,
        Critical,
        "too many arguments, parts or nesting levels",
        T_NONE,
        Request,
    ),
    rule(
        ids::CONTENT_TYPE_NOT_ALLOWED,
        1,
        Critical,
        "request content type is not allowed",
        T_NONE,
        Request,
    ),
    rule(
        ids::EXTENSION_RESTRICTED,
        1,
        Critical,
        "URL file extension is restricted",
        T_NONE,
        Request,
    ),
    rule(
        ids::HEADER_RESTRICTED,
        1,
        Critical,
        "HTTP header is restricted",
        T_NONE,
        Request,
    ),
    rule(
        ids::CHARSET_NOT_ALLOWED,
        1,
        Critical,
        "request content type charset is not allowed",
        T_NONE,
        Request,
    ),
    rule(
        ids::BACKUP_FILE,
        1,
        Critical,
        "attempt to access a backup or working file",
        T_NONE,
        Request,
    ),
    // 921: protocol attacks.
    rule(
        921110,
        1,
        Critical,
        "HTTP request smuggling attack",
        T_ARGS,
        Pattern(
            Text,
            r"(?:get|post|head|options|connect|put|delete|trace|track|patch|propfind|proppatch|mkcol|copy|move|lock|unlock)\s+[^\s]+\s+http/\d",
        ),
    ),
    rule(
        921120,
        1,
        Critical,
        "HTTP response splitting attack",
        T_ARGS,
        Pattern(
            Text,
            r"[\r\n]\W*(?:content-(?:type|length)|set-cookie|location)\s*:\s*\w",
        ),
    ),
    rule(
        921130,
        1,
        Critical,
        "HTTP response splitting attack",
        T_ARGS,
        Pattern(Text, r"[\r\n]\W*(?:\bhttp/\d|<(?:html|meta)\b)"),
    ),
    rule(
        ids::NEWLINE_IN_ARG_NAME,
        1,
        Critical,
        "HTTP header injection via argument names",
        Targets::ARG_NAMES,
        Request,
    ),
    rule(
        921160,
        1,
        Critical,
        "HTTP header injection via payload",
        T_ARGS,
        Pattern(
            Text,
            r"[\r\n]+(?:\s|location|refresh|(?:set-)?cookie|(?:x-)?forwarded-(?:for|host|server)|host|via|remote-ip|remote-addr|originating-ip)\s*:",
        ),
    ),
    rule(
        ids::NEWLINE_IN_PATH,
        1,
        Critical,
        "newline in request file name",
        T_NONE,
        Request,
    ),
    rule(
        921200,
        1,
        Critical,
        "LDAP injection",
        T_ARGS_PATH,
        Pattern(
            Text,
            r"\)\s*\(\s*[|&!]\s*\(|\*\s*\)\s*\(\s*[|&!]?\s*\w+\s*[~<>]?=|^\*\)\s*\(|\)\s*\(\s*\w+\s*[~<>]?=\s*\*|\(\s*[|&]\s*\(\s*\w+\s*[~<>]?=|\)\s*[&|!]?\s*\(\s*(?:[|&!]\s*(?:\)|\(|$)|\w+\s*[~<>]?=)|\*\s*\)\s*!\s*\(|\b[a-z]\w*(?::dn)?:\d+(?:\.\d+)+:=",
        ),
    ),
    rule(
        921910,
        1,
        Critical,
        "mail header or command injection",
        T_ARGS_PATH,
        Pattern(
            Text,
            r"[\r\n]\s*(?:bcc|cc|to|from|reply-to|subject)\s*:\s*\S|[\r\n]\s*(?:rcpt to|mail from)\s*:|[\r\n]\s*(?:quit|rset|noop)\s*(?:[\r\n]|$)|[\r\n]\s*\w*\s*(?:capability|login|select|fetch|append|examine|list|lsub|store|uid)\s+[\w\x22]",
        ),
    ),
    // 922: multipart attacks.
    rule(
        ids::MULTIPART_MALFORMED,
        1,
        Critical,
        "malformed multipart body",
        T_NONE,
        Request,
    ),
    rule(
        ids::MULTIPART_PART_HEADERS,
        1,
        Critical,
        "multipart part header with charset or transfer encoding",
        T_NONE,
        Request,
    ),
    // 930: local file inclusion.
    rule(
        930100,
        1,
        Critical,
        // After a slash or at the start, two or three dots then a slash, each written any way
        // a decoder somewhere reads as one (percent, double percent, overlong UTF-8 and the
        // bit-flipped forms IIS took, %u, full width, `0x2e`; a `?` or `%3f` stands for a dot
        // in Windows' wildcards), with the `%00`/`%01` that truncating decoders drop; the
        // common encodings of `../` count anywhere.
        "path traversal attack (encoded /../)",
        T_ALL,
        Pattern(
            Raw,
            r"(?:^|(?:/|\\|%2f|%5c|%252f|%255c|%c0%af|%c0%2f|%c0%5c|%c0%9v|%c0%qf|%c1%1c|%c1%9c|%c1%8s|%c1%pc|%c1%af|%bg%qf|%e0%80%af|%f0%80%80%af|%f8%80%80%80%af|%u2215|%u2216|%uefc8|%uf025|%u002f|%uff0f|0x2f|0x5c))(?:(?:\.|%2e|%252e|%c0%ae|%c0%2e|%c0%5e|%c0%ee|%c0%fe|%c0\.|%e0%80%ae|%f0%80%80%ae|%f8%80%80%80%ae|%fc%80%80%80%80%ae|%u002e|%uff0e|%u2024|0x2e|%3f|\?)(?:%0[01])?){2,3}(?:/|\\|%2f|%5c|%252f|%255c|%c0%af|%c0%2f|%c0%5c|%c0%9v|%c0%qf|%c1%1c|%c1%9c|%c1%8s|%c1%pc|%c1%af|%bg%qf|%e0%80%af|%f0%80%80%af|%f8%80%80%80%af|%u2215|%u2216|%uefc8|%uf025|%u002f|%uff0f|0x2f|0x5c)|(?:%2e|%c0%ae|%e0%80%ae|%u002e|%uff0e|%252e)(?:%2e|%c0%ae|%e0%80%ae|%u002e|%uff0e|%252e|\.)(?:%2f|%5c|%c0%af|%c1%9c|%e0%80%af|%u2215|%u2216|%uff0f|%252f|%255c|/|\\)|\.(?:%2e|%c0%ae|%e0%80%ae|%u002e|%uff0e|%252e)(?:%2f|%5c|%c0%af|%c1%9c|%252f|%255c|/|\\)|\.\.(?:%2f|%5c|%c0%af|%c1%9c|%e0%80%af|%u2215|%u2216|%uff0f|%252f|%255c)|(?:%25c0%25ae){2}%25c0%25af",
        ),
    ),
    rule(
        930110,
        1,
        Critical,
        "path traversal attack (/../)",
        T_INPUT,
        Pattern(
            Text,
            r"(?:^|[\\/])\.{2,3}(?:[\\/]|;|$)|\.\.\.\.//|\.\.\\\\|\.\.;/",
        ),
    ),
    rule(
        930120,
        1,
        Critical,
        "OS file access attempt",
        T_ARGS_PATH,
        Pattern(
            Text,
            r"(?:^|[\\/=\s:])(?:etc[\\/](?:\.[\\/])*(?:passwd|shadow|group|hosts|issue|motd|crontab|sudoers|hostname|sub[ug]id|resolv\.conf|ssh/|mysql/|apache2/|nginx/|httpd/|environment|profile|security/)|proc[\\/](?:(?:self|\d+)[\\/]|(?:interrupts|cpuinfo|meminfo|mounts|kallsyms|sched_debug)\b)|sys[\\/](?:class|kernel|devices|firmware|module)\b|ntuser\.dat\b|boot\.ini|win\.ini|system\.ini|windows[\\/](?:system32|win\.ini|system\.ini|repair)|winnt[\\/]|system32[\\/]|inetpub[\\/]|var[\\/](?:log|lib|www|mail|spool|run)[\\/]|usr[\\/](?:local[\\/])?(?:bin|sbin|lib|share)[\\/]|root[\\/]\.|\.ssh[\\/]|id_(?:rsa|dsa|ecdsa|ed25519)\b|\.(?:bash_history|bashrc|bash_profile|zshrc|profile|htaccess|htpasswd|git[\\/]|svn[\\/]|aws[\\/]|docker[\\/]|kube[\\/]|npmrc|netrc|pgpass|my\.cnf|mysql_history|psql_history|viminfo)|web\.config\b|wp-config\.php|config\.php\b|localsettings\.php|\.env(?:\.\w+)?$|/\.env\b|php\.ini\b|my\.ini\b|httpd\.conf\b|nginx\.conf\b|applicationhost\.config)",
        ),
    ),
    rule(
        930130,
        1,
        Critical,
        "restricted file access attempt",
        T_ARGS_PATH,
        Pattern(
            Text,
            r"(?:^|/)(?:proc/(?:self|\d+|interrupts|cpuinfo|meminfo|mounts|kallsyms)|sys/(?:class|kernel|devices|firmware|module))(?:/|$)|\.(?:sql|db|sqlite3?|mdb|bak|dump)\.(?:zip|gz|tgz|bz2|xz|7z|rar|tar)$|/@id/__x00__|/\.(?:aiignore|cursorignore|aiexclude|codeiumignore|geminiignore)$",
        ),
    ),
    // 931: remote file inclusion.
    rule(
        930140,
        1,
        Critical,
        "access to AI coding assistant configuration",
        Targets::PATH,
        Pattern(
            Text,
            r#"/\.(?:claude|cursor|aider|cline|clinerules|codex|continue|junie|kiro|n8n|opencode|plandex|fabric|a0proj|windsurf|roo|gemini|copilot|amazonq|tabnine|zed|rovodev)(?:/|$)"#,
        ),
    ),
    rule(
        931100,
        1,
        Critical,
        "remote file inclusion: URL with an IP address",
        T_ARGS,
        Pattern(
            Text,
            r"^(?:file|ftps?|https?|gopher|dict|ldap|tftp)://(?:\[?[0-9a-f:]*:[0-9a-f:]*\]?|\d{1,3}(?:\.\d{1,3}){3}|\d{8,10}|0x[0-9a-f]{8})(?:[:/?#]|$)",
        ),
    ),
    rule(
        931110,
        1,
        Critical,
        "remote file inclusion: common parameter names with a URL",
        T_ARGS,
        Pattern(
            Text,
            r"\binclude\s*\([^)]*(?:file|ftps?|https?)://|(?:mosconfig_absolute_path|_conf\[path\]|_server\[document_root\]|gallery_basedir|path\[docroot\]|appserv_root|config\[root_dir\])=(?:file|ftps?|https?)://",
        ),
    ),
    rule(
        931120,
        1,
        Critical,
        "remote file inclusion: URL ending with a question mark",
        T_ARGS,
        Pattern(Text, r"^(?:file|ftps?|https?)(?:://.*)?\?+$"),
    ),
    // 932: remote command execution.
    rule(
        932110,
        1,
        Critical,
        "remote command execution: Windows command injection",
        T_ARGS_PATH,
        Pattern(
            Cmd,
            r"(?:^|[;&|`\n\r]|&&|\|\|)\s*(?:cmd(?:\.exe)?\s*/[ck]|powershell(?:\.exe)?|pwsh|net\s+(?:user|localgroup|view|use|share|start|stop)|ipconfig|systeminfo|tasklist|taskkill|certutil|bitsadmin|wmic|reg\s+(?:query|add|delete)|schtasks|rundll32|regsvr32|mshta|cscript|wscript|type\s+(?:[a-z]:|%|\S*\.(?:txt|ini|bat|cmd|log|conf|config|xml)\b)|dir(?:\s*/[a-z]\b|\s+[a-z]:|\s+%)|(?:del|copy)(?:\s*/[a-z]\b|\s+[a-z]:|\s+%|\s+\*)|nslookup|ping\s+-n|whoami)|(?:[;&|`\n\r]|&&|\|\|)\s*dir\s*$",
        ),
    ),
    rule(
        932120,
        1,
        Critical,
        "remote command execution: Windows PowerShell command",
        T_ARGS_PATH,
        Pattern(
            Text,
            r"\b(?:invoke-(?:expression|webrequest|command|item|restmethod|shellcode|mimikatz)|iex\s*\(|new-object\s+(?:-\w+\s+)?(?:system\.)?net\.webclient|downloadstring|downloadfile|start-process|set-executionpolicy|-encodedcommand|-executionpolicy\s+bypass|\[system\.convert\]::frombase64string)",
        ),
    ),
    rule(
        932125,
        1,
        Critical,
        "remote command execution: Windows PowerShell alias",
        T_ARGS_PATH,
        Pattern(
            Cmd,
            r"(?:^|[;&|`\n])\s*(?:iwr|irm|iwmi|gwmi|icm|saps|sajb)\s*(?:-\w|https?:|\S+\.ps1\b)",
        ),
    ),
    rule(
        932130,
        1,
        Critical,
        "remote command execution: Unix shell expression",
        T_ARGS_PATH_HDR,
        Pattern(
            Text,
            r"\$\((?:[^)]|\)\S)+\)|\$\{\s*ifs\s*\}|\$ifs\b|`[^`]+`|\$\{[a-z_]+(?::?[-=+?][^}]*|#|%[^}]*)\}|[<>]\(\s*\w+|\$\(\(|\$\[[^\]]*\]|\$\{[a-z_]\w*(?:#[^}]*)?\}|\$\{\s*:|(?:^|[\s;|&=])/(?:[\w.-]*/+)*[\w.-]*\[[!^]?[\w?*/.-]+\][\w/]",
        ),
    ),
    rule(
        932140,
        1,
        Critical,
        "remote command execution: Windows FOR/IF command",
        T_ARGS_PATH,
        Pattern(
            Text,
            r#"\bfor\s+(?:/[dlrf]\b[^%\n]*)?%%?[^\s%]*\s+in\s*\([^\n]*\)\s*do\b|\bif(?:\s+|\s*/i\s+)(?:not\s+)?(?:exist\s+\S|errorlevel\s+\d|cmdextversion\s+\d|defined\s+[\w%!]+\s+(?:\(|@?(?:echo|set|goto|call|cmd|exit|del|copy)\b))|\bif(?:\s+|\s*/i\s+)(?:not\s+)?\(?\s*(?:\x22[^\x22]*\x22|[^\s=]+)\s*(?:==|\s(?:equ|neq|lss|leq|gtr|geq)\s)"#,
        ),
    ),
    rule(
        932160,
        1,
        Critical,
        "remote command execution: Unix shell code",
        T_ARGS_PATH_HDR,
        Pattern(
            Cmd,
            r"(?:/bin/|/usr/bin/|/sbin/|/usr/sbin/|/usr/local/bin/)(?:ba|da|k|z|c|tc|fi)?sh\b|/bin/(?:cat|ls|nc|ncat|busybox|echo|id|rm|chmod|curl|wget|python|perl|ruby|php|sleep|ping)\b|/usr/bin/(?:env|id|whoami|curl|wget|python[23]?|perl|ruby|php|nc|ncat|socat|base64|xxd|find|awk|gawk|sed|nohup)\b|/dev/(?:tcp|udp)/|/proc/self/environ|/etc/passwd|/etc/shadow|\bchmod\s*\+?[0-7]{3,4}|\bchmod\s*\+x|\brm\s*-[rf]{1,2}\s|\bnc\s*-[elnvp]+|\bcurl\s*-[a-z]*\s*\S*http|\bwget\s*-[a-z]*\s*\S*http|\bwget\s+https?|\bcurl\s+https?|^\s*/(?:usr/(?:local/)?)?s?bin/\w|\bbin/(?:ansible|chef|cscli|visudo)\b|\$(?:shell|bash)\s*-c\b",
        ),
    ),
    rule(
        932170,
        1,
        Critical,
        "remote command execution: Shellshock",
        T_INPUT,
        Pattern(Text, r"^\(\s*\)\s*\{"),
    ),
    rule(
        932171,
        1,
        Critical,
        "remote command execution: Shellshock",
        T_INPUT,
        Pattern(Text, r"\(\s*\)\s*\{\s*[:;_a-z]"),
    ),
    rule(
        932175,
        1,
        Critical,
        "remote command execution: shell alias definition",
        T_ARGS_PATH,
        Pattern(Cmd, r#"\balias\s+(?:[-+]\w+\s+)*[\w.-]+=\S"#),
    ),
    rule(
        932180,
        1,
        Critical,
        "restricted file upload attempt",
        Targets::FILES,
        Pattern(
            Text,
            r"(?:^|[\\/])(?:\.htaccess|\.htdigest|\.htpasswd|web\.config|\.user\.ini|php\.ini|\.bashrc|\.profile|authorized_keys|\.env|\.git(?:config|ignore)?|crontab|\.boto|config\.ya?ml|settings\.\s*php|wp-config[._-]\s*php(?:\.\w+)?)\s*$",
        ),
    ),
    rule(
        932200,
        2,
        Critical,
        "remote command execution: wildcard or variable path bypass",
        T_ARGS_PATH,
        Pattern(
            Cmd,
            r"(?:/[a-z0-9_.-]*[?*][a-z0-9_.?*-]*){2}|/e[?*]c/|/b[?*]n/|\$\{?[a-z_]*\}?/(?:bin|etc|usr)/",
        ),
    ),
    rule(
        932230,
        1,
        Critical,
        "remote command execution: Unix command injection",
        T_ARGS_PATH_HDR,
        Pattern(
            Cmd,
            r"(?:[;&|`\n\r]|\$\(|\$\{|&&|\|\|)\s*[{(]?\s*(?:\$\w+\s+)?(?:(?:time|nohup|strace|ltrace|nice|sudo)\s+)*(?:(?:/(?:usr/)?(?:local/)?s?bin)?/)?(?:(?:gcc|g\+\+|clang|c89|c99|tcc|irb|gdb|rmt)[\d.]*(?:\s*<<<|\s+-)|(?:ls|whoami|uname|wget|curl|nc|ncat|netcat|bash|sh|zsh|ksh|csh|tcsh|python[23]?|perl|php|nslookup|ifconfig|chmod|chown|rm|pwd|nmap|telnet|ssh|scp|sftp|tftp|grep|egrep|awk|gawk|sed|xargs|base64|xxd|hexdump|crontab|useradd|usermod|passwd|sudo|systemctl|mkfifo|mknod|socat|lsof|netstat|busybox|apt-get|yum|dpkg|mysql|psql|sqlite3|redis-cli|getent|tac|ifup|iptables|uname|nohup|setsid|powershell)(?:\$\w+)?(?:[\s+;&|<>`)/]|$))",
        ),
    ),
    rule(
        932235,
        1,
        Critical,
        "remote command execution: Unix command with shell arguments",
        T_ARGS_PATH_HDR,
        Pattern(
            Cmd,
            r"(?:[;&|`\n\r]|\$\(|&&|\|\|)\s*[{(]?\s*(?:(?:time|nohup|strace|ltrace|nice)\s+)*(?:(?:lastlog(?:in)?|rmt-\w+|cpulimit|ansible(?:-[a-z]+)?|chef-[a-z]+|cscli|visudo|strace|ltrace|ifconfig|bsdtar)(?:\s|$)|(?:perf|base32|base64|flock|bridge|column|fold|cut|rev|nl|strings)\s+(?:-{1,2}\w|\S*(?:passwd|shadow|/)))|(?:[;&|`\n\r]|\$\(|&&|\|\|)\s*[{(]?\s*(?:cat|echo|printf|ping|sleep|kill|find|head|tail|more|less|touch|time|who|last|set|host|dig|env|export|eval|exec|id|ps|ip|cp|mv|dd|od|tar|zip|unzip|gzip|ruby|node|lua|openssl|timeout|mail|history|uptime)(?:\s*$|\s*[;&|<>`)]|\s+-{1,2}\w|\s*/|\s+\$|\s+\d+\s*(?:$|[;&|`)]))",
        ),
    ),
    rule(
        932260,
        1,
        Critical,
        "remote command execution: direct Unix command execution",
        T_ARGS_PATH,
        Pattern(
            Cmd,
            r#"^\s*(?:(?:time|nohup|strace|ltrace|nice|sudo)\s+)*(?:ansible\s+(?:all|localhost|-)|ansible-(?:config|console|doc|galaxy|inventory|playbook|pull|vault)\b|chef-(?:client|run|shell|vault|solo|apply)\b|cscli\s|visudo\b|busybox\s+(?:-|sh\b|ash\b|wget\b|nc\b|telnet)|bsdtar\b|perf\s+-)|^\s*(?:time|nohup|strace|ltrace)\s+(?:s?h|bash|dash|zsh|ifconfig|id|whoami|uname|cat|ls|nc|bsdtar|python\d?|perl|ruby)(?:\s|$|;)"#,
        ),
    ),
    rule(
        932270,
        1,
        Critical,
        "remote command execution: tilde expansion",
        T_ARGS,
        Pattern(Text, r#"^\s*~[+-]\d*\s*$"#),
    ),
    rule(
        932280,
        1,
        Critical,
        "remote command execution: brace expansion",
        T_ARGS_PATH,
        Pattern(
            Text,
            r"\{(?:,[\w/.-]+|[\w/.-]+,)\}|\{[\w/.]*,-[\w/.-]*\}|[a-z]\{[\w/.-]*,[\w/.-]*\}|\{[\w/.-]*,[\w/.-]*\}[a-z]",
        ),
    ),
    rule(
        932330,
        1,
        Critical,
        "remote command execution: shell history expansion",
        T_ARGS_PATH,
        Pattern(Text, r"!-\d+\s*!-?\d+|^\s*!-\d+\s*$"),
    ),
    rule(
        932340,
        1,
        Critical,
        "remote command execution: Unix command after a separator",
        T_ARGS_PATH_UA,
        Pattern(
            Cmd,
            r"^\s*[;&|`\n]+\s*(?:env|set|printenv|aptitude|htop|top|ps|who|whoami|id|lastlog|uname|pwd|ls|ifconfig|history|w|last|netstat|hostname|uptime|dmesg)\s*(?:[;&|`]|$)",
        ),
    ),
    rule(
        932370,
        1,
        Critical,
        "remote command execution: Windows registry editor",
        T_ARGS_PATH,
        Pattern(
            Cmd,
            r"(?:^|[;&|`\n=])\s*regedit(?:\.exe)?\s*(?:/[a-z]|\s[a-z]:)",
        ),
    ),
    rule(
        932380,
        1,
        Critical,
        "remote command execution: Windows command injection",
        T_ARGS_PATH,
        Pattern(
            Cmd,
            r"(?:^|[;&|`\n])\s*(?:bcdboot|bcdedit|bootcfg|bootrec|diskpart|vssadmin|wevtutil|takeown|icacls|cacls|fsutil|netsh|wbadmin|auditpol|cmdkey|nltest|dsquery|ntdsutil|mountvol|forfiles|schtasks)\s*(?:/[a-z?]|[<>|]|-\w)",
        ),
    ),
    rule(
        932901,
        1,
        Critical,
        "server-side include directive",
        T_ARGS_PATH,
        Pattern(
            Text,
            r"<!--\s*#\s*(?:include|exec|echo|config|set|printenv|fsize|flastmod|if|elif)\b",
        ),
    ),
    // 933: PHP injection.
    rule(
        933100,
        1,
        Critical,
        "PHP injection: opening or closing tag",
        T_ALL,
        Pattern(Text, r"<\?(?:php\b|=|\s|$)|[\[{]\\?/?php[\]}]|\?>\s*$"),
    ),
    rule(
        933110,
        1,
        Critical,
        "PHP injection: PHP script file upload",
        Targets::FILES,
        Pattern(
            Text,
            r"\.\s*(?:php\d*|phtml|phar|pht|phpt|phps|pgif|shtml|htaccess|inc)[\s.]*$",
        ),
    ),
    rule(
        933120,
        1,
        Critical,
        "PHP injection: configuration directive",
        T_ARGS,
        Pattern(
            Text,
            r"\b(?:allow_url_(?:include|fopen)|auto_(?:prepend|append)_file|disable_functions|open_basedir|safe_mode|register_globals|display_errors|suhosin\.\w+|enable_dl|magic_quotes_gpc|extension_dir|memory_limit|max_execution_time|opcache\.\w+|mbstring\.\w+|session\.(?:referer_check|save_path|save_handler|use_trans_sid|serialize_handler|auto_start)|unserialize_max_depth|include_path|error_log|sendmail_path|mail\.log|zend_extension|pcre\.\w+)\s*=|^\s*(?:engine|extension|precision|smtp|sendmail_from)\s*=\s*\S",
        ),
    ),
    rule(
        933130,
        1,
        Critical,
        "PHP injection: variables",
        T_ARGS_PATH,
        Pattern(
            Text,
            r"\$_(?:get|post|cookie|request|server|files|env|session)\b|\$globals\b|\$http_(?:raw_post_data|get_vars|post_vars|cookie_vars|server_vars)\b|\$php_self\b",
        ),
    ),
    rule(
        933135,
        1,
        Critical,
        "PHP injection: variable variable",
        T_ARGS_PATH,
        Pattern(Text, r"\$\s*\{\s*(?:['\x22]\w|\$\w)"),
    ),
    rule(
        933140,
        1,
        Critical,
        "PHP injection: I/O stream",
        T_ARGS_PATH,
        Pattern(
            Text,
            r"php://(?:std(?:in|out|err)|(?:in|out)put|fd|memory|temp|filter)",
        ),
    ),
    rule(
        933150,
        1,
        Critical,
        "PHP injection: high-risk function name",
        T_ARGS_PATH,
        Pattern(
            Text,
            r"\b(?:phpinfo|shell_exec|passthru|proc_open|pcntl_exec|base64_decode|gzinflate|gzuncompress|str_rot13|create_function|call_user_func(?:_array)?|file_get_contents|file_put_contents|move_uploaded_file|show_source|highlight_file|assert_options|fsockopen|pfsockopen|stream_socket_client|php_uname|posix_(?:getpwuid|setuid|kill|mkfifo)|ini_(?:set|get_all)|get_defined_vars|getenv|putenv|set_time_limit|escapeshellcmd|escapeshellarg|proc_nice|symlink|readlink|curl_exec|preg_replace)\b|(?:gzinflate|gzdecode|gzuncompress|bzdecompress|zlib_decode|call_user_func(?:_array)?|fsockopen|curl_init|curl_exec|get_defined_(?:functions|vars|constants)|file_exists|is_array|str_rot13|strrev|print_r|posix_\w+|base64_decode|shell_exec|proc_open)\s*=?\s*\(",
        ),
    ),
    rule(
        933160,
        1,
        Critical,
        "PHP injection: function call",
        T_ARGS_PATH,
        Pattern(
            Text,
            r"\b(?:eval|assert|system|exec|popen|include(?:_once)?|require(?:_once)?|readfile|fopen|fwrite|unlink|unserialize|serialize|mail|header|chr|ord|var_dump|print_r|file|copy|rename|mkdir|chmod|die|exit)\s*\(\s*(?:[\x22'$]|\w+\s*\()|\b(?:exec|shell_exec|passthru|popen|proc_open|pcntl_exec|fopen|filegroup|fileowner|strip_tags|intval|unserialize|unpack|readfile)\s*(?:\(|/\*|#|//)|\b(?:system|printf|sprintf|phpinfo)(?:\(|/\*)|['\x22](?:system|exec|shell_exec|passthru|popen|assert|eval)\s*['\x22]\s*\)?\s*\(",
        ),
    ),
    rule(
        933170,
        1,
        Critical,
        "PHP injection: serialized object",
        T_INPUT,
        Pattern(Text, r#"[oc]:\d+:"[^"]+":\d+:\{"#),
    ),
    rule(
        933180,
        1,
        Critical,
        "PHP injection: variable function call",
        T_ARGS_PATH,
        Pattern(
            Text,
            r#"\$+\s*(?:\{[^}]+\}|[a-z_]\w*)\(|\$+\s*(?:\{[^}]+\}|[a-z_]\w*)(?:\s*(?:->\s*\$+\w+|\[[^\]]+\]|\{[^}]+\}|/\*[^*]*\*/|(?:#|//)[^\n]*\n))+\s*\(|\$+\s*(?:\{[^}]+\}|_\w*|[a-z]\w*[_\d]\w*)\s*\(|::\s*\$\w+\s*\("#,
        ),
    ),
    rule(
        933200,
        1,
        Critical,
        "PHP injection: wrapper scheme",
        T_ARGS_PATH,
        Pattern(
            Text,
            r"\b(?:zlib|glob|phar|ssh2(?:\.\w+)?|rar|ogg|expect|zip|compress\.(?:zlib|bzip2))://|\bdata://(?:text|application)/",
        ),
    ),
    // 934: generic.
    rule(
        933210,
        1,
        Critical,
        "PHP injection: variable function call with obfuscated name",
        T_ARGS_PATH,
        Pattern(
            Text,
            r#"\(\s*(?:\(\s*string\s*\)\s*)?[\[\s'\x22(]{0,10}(?:/\*[^*]*\*/\s*)?(?:system|exec|passthru|shell_exec|popen|proc_open|pcntl_exec|assert|phpinfo)\b[\s'\x22\]]*(?:\[\s*\d+\s*\]\s*)?\)\s*(?:\[[^\]]*\]\s*|\{[^}]*\}\s*)*\(|\[\s*['\x22]?(?:system|exec|passthru|shell_exec|popen|assert)['\x22]?\s*\]\s*\[\s*\d+\s*\]\s*\(|['\x22]\w+['\x22]\s*\.\s*(?:\(\s*)?['\x22]?\w[^\n]*\)\s*(?:\[\s*\d+\s*\]\s*)*(?:/\*[^*]*\*/\s*)?\(\s*['\x22]|\(\s*\w+\s*\.\s*\(\s*\w+\s*\)\s*\.\s*\w+\s*\)\s*\("#,
        ),
    ),
    rule(
        933220,
        1,
        Critical,
        "PHP session file upload",
        Targets::FILES,
        Pattern(Text, r#"(?:^|[\\/])sess_[\w,-]{10,}\s*$"#),
    ),
    rule(
        934100,
        1,
        Critical,
        "Node.js injection",
        T_ARGS_PATH,
        Pattern(
            Text,
            r#"\brequire\s*\(\s*['"`](?:child_process|fs|net|http|os|vm|process)['"`]\s*\)|\bchild_process\b|process\.(?:mainmodule|binding|dlopen|kill)\b|\bglobal\.process\b|\b(?:exec|spawn)sync\s*\(|\.constructor\s*\(\s*['"`]return|_\$\$nd_func\$\$_|__js_function|\bconsole\s*(?:\.\s*\w+|\[\s*['"`]\w+['"`]\s*\])\s*(?:\.\s*(?:call|apply|bind)\s*)?\(|\bfunction\s*\(\s*\)\s*\{|\bmodule\.exports\s*=|\bprocess\s*(?:\.\s*env\b|\[)|\brequire\s*\[|\bthis\.constructor\.constructor|\$\w{1,3}:(?:\w+:)*(?:constructor|prototype|__proto__)\b"#,
        ),
    ),
    rule(
        934110,
        1,
        Critical,
        "server-side request forgery: cloud metadata",
        T_ARGS,
        Pattern(
            Text,
            r"169\.254\.169\.254|\bmetadata\.google\.internal\b|100\.100\.100\.200|\bmetadata\.packet\.net\b|fd00:ec2::254|\bmetadata\.azure\.com\b|169\.254\.170\.2\b",
        ),
    ),
    rule(
        934130,
        1,
        Critical,
        "JavaScript prototype pollution",
        T_ARGS,
        Pattern(
            Text,
            r"__proto__|\bconstructor\s*(?:\.|\[\s*['\x22]?)\s*prototype",
        ),
    ),
    rule(
        934150,
        1,
        Critical,
        "Ruby injection",
        T_ARGS_PATH,
        Pattern(
            Text,
            r"\b(?:process\.spawn|kernel\.(?:exec|system|spawn|open|eval)|io\.popen|instance_eval|class_eval|module_eval|%x\{|open\s*\(\s*['\x22]\|)",
        ),
    ),
    rule(
        934160,
        1,
        Critical,
        "Node.js denial of service",
        T_ARGS_PATH,
        Pattern(
            Text,
            r"\bwhile\s*\(\s*(?:true|1|!0)\s*\)|\bfor\s*\(\s*;\s*;\s*\)|\bwhile\s*\(\s*(?:[!+-]\s*)*(?:\(\s*true\s*\)|true|false|null|undefined|nan|infinity|this|string|number|object|new\s+\w+|\d+|\x22\x22|''|``|\{\}|\[\])\s*\)|\bdo\s*\{[^}]*\}\s*while\s*\(",
        ),
    ),
    rule(
        934170,
        1,
        Critical,
        "server-side request forgery: data URL",
        T_ARGS,
        Pattern(Text, r"^\s*data:[a-z]+/[a-z0-9.+-]+(?:[;,]|$)"),
    ),
    rule(
        934190,
        1,
        Critical,
        "server-side request forgery: loopback or container host name",
        T_ARGS,
        Pattern(
            Text,
            r#"^\s*(?:(?:https?|gopher|dict|ftp)://)?(?:[^/@\s]*@)?(?:localhost[46]?(?:\.localdomain[46]?)?|ip6-(?:localhost|loopback)|ipv6-localhost|(?:host|gateway|kubernetes)\.(?:docker|containers)\.internal|kubernetes\.default\.svc(?:\.cluster\.local)?|localtest\.me|lvh\.me)(?:[:/?#]|$)"#,
        ),
    ),
    rule(
        934910,
        1,
        Critical,
        "server-side template injection",
        T_ARGS_PATH,
        Pattern(
            Text,
            r"\{\{[^}]{0,200}(?:[*+/()\[\].|_]|config|self|request|lipsum|cycler|joiner|namespace|range)[^}]{0,200}\}\}|\{%[^%]{0,200}%\}|<%=?[^%]{1,200}%>|[$#]\{[^}]{0,100}[*+/()\[\].'\x22][^}]{0,100}\}|\$\{\{|\bfreemarker\.template|\bnew\(\)\s*>|\*\{[^}]{1,100}\}",
        ),
    ),
    rule(
        934920,
        1,
        Critical,
        "XML external entity",
        Targets(Targets::BODY.0 | Targets::ARGS.0),
        Pattern(
            Text,
            r"<!entity\s+[^>]*\b(?:system|public)\b|<!doctype[^>]*\[\s*<!entity|<xi:include\b|<!entity\s+%|<!doctype\s+\w+\s+(?:system|public)\b|<xs:(?:include|import|redefine)\b|\bschemalocation\s*=\s*['\x22]\s*(?:https?|ftp|file)://",
        ),
    ),
    rule(
        934930,
        1,
        Critical,
        "NoSQL operator injection",
        T_ARGS_PATH,
        Pattern(
            Text,
            r#"(?:^|\[|\{\s*['"]?|,\s*)\$(?:ne|eq|lte?|gte?|n?in|regex|where|exists|expr|elemmatch|or|and|nor|not|function|accumulator|lookup)\b|\bdb\.\w+\.(?:find|insert|drop|remove|update)\w*\s*\(|\bthis\.\w+\s*(?:==|!=)|;\s*return\s+(?:true|1)\b|\|\|\s*['"]?1['"]?\s*==\s*['"]?1"#,
        ),
    ),
    rule(
        934940,
        1,
        Critical,
        "unsafe deserialization tag or GraphQL introspection",
        T_ARGS_PATH,
        Pattern(
            Text,
            r"!!python/(?:object|name|module)|!ruby/(?:object|hash|struct)|!!javax?\.|\b__(?:schema|type)\s*[({]|\bintrospectionquery\b",
        ),
    ),
    // 941: cross-site scripting.
    rule(
        941100,
        1,
        Critical,
        "XSS attack detected via libinjection",
        T_INPUT,
        LibinjectionXss,
    ),
    rule(
        941110,
        1,
        Critical,
        "XSS filter: script tag vector",
        T_INPUT,
        Pattern(Text, r"<\s*/?\s*script\b"),
    ),
    rule(
        941120,
        1,
        Critical,
        "XSS filter: event handler vector",
        T_INPUT,
        Pattern(
            Text,
            r"[\s\x22'`;/0-9=,(\[]on[a-z]{3,50}[\s;,(]*=[^=]|[\s\x22'`]on[a-z]{3,50}\s*=$",
        ),
    ),
    rule(
        941130,
        1,
        Critical,
        "XSS filter: attribute vector",
        T_INPUT,
        Pattern(
            Text,
            r"\b(?:formaction|xlink:href|srcdoc|dynsrc|lowsrc)\s*=|\bstyle\s*=\s*[\x22']?[^\x22']*(?:expression\s*\(|behavior\s*:|-moz-binding|url\s*\(\s*[\x22']?\s*javascript)|<[^>]+\bsrc\s*=\s*[\x22']?\s*(?:javascript|vbscript|data):",
        ),
    ),
    rule(
        941140,
        1,
        Critical,
        "XSS filter: JavaScript URI vector",
        T_INPUT,
        Pattern(
            Text,
            r"(?:^|[\s\x22'`=(<>])(?:java|vb|live|j\s*a\s*v\s*a\s*)script\s*:(?:[^\s]|\s*[\w.$\[\]]*\s*[(`=]|\s*//|\s*\\|\s*$)|data\s*:\s*(?:text/html|image/svg\+xml|application/(?:x-)?javascript)|\burl\s*\(\s*[\x22']?\s*(?:java|vb)script\b",
        ),
    ),
    rule(
        941160,
        1,
        Critical,
        "NoScript XSS filter: HTML injection",
        T_INPUT,
        Pattern(
            Text,
            r"<\s*/?\s*(?:script|iframe|frame|frameset|object|embed|applet|meta|link|style|base|form|svg|math|img|image|video|audio|source|track|body|html|input|button|textarea|marquee|isindex|xss|details|template|dialog|keygen|bgsound|layer|ilayer|xml|import|animate\w*|handler|listener|a\s+href|table\s+background|div\s+style)\b|<\s*[a-z](?:\s+[a-z]){3,}\b|<\s*[a-z]\w*\s*:\s*(?:script|svg|iframe|img|object|embed)\b",
        ),
    ),
    rule(
        941170,
        1,
        Critical,
        "NoScript XSS filter: attribute injection",
        T_INPUT,
        Pattern(
            Text,
            r"@\s*import\s*(?:url|[\x22'])|-moz-binding\s*:|data:[a-z]+/[a-z0-9.+-]+;base64,|\bbehavior\s*:\s*url",
        ),
    ),
    rule(
        941180,
        1,
        Critical,
        "node-validator deny list keywords",
        T_INPUT,
        Pattern(
            Text,
            r"document\s*\??\.\s*(?:cookie|write|writeln|domain|location)|\.(?:parentnode|innerhtml|outerhtml|insertadjacenthtml|appendchild|createelement|queryselector(?:all)?|getelementby\w+)\b|window\.(?:location|name|open)\b|\bfromcharcode\b|<!\[cdata\[|\blocation\.(?:href|hash|replace)\b",
        ),
    ),
    rule(
        941200,
        1,
        Critical,
        "XSS filter: VML frame",
        T_INPUT,
        Pattern(
            Text,
            r"<\s*\w*\s*:\s*vmlframe\b|<\s*v\s*:\s*(?:image|rect|oval|shape|imagedata|fill|stroke)\b",
        ),
    ),
    rule(
        941210,
        1,
        Critical,
        "XSS filter: obfuscated script scheme",
        T_INPUT,
        Pattern(Text, r"[a-z](?:&(?:newline|tab);)+[a-z]|&colon;"),
    ),
    rule(
        941350,
        1,
        Critical,
        "UTF-7 encoding XSS",
        T_INPUT,
        Pattern(Text, r"\+ad[wz]-|\+adw-"),
    ),
    rule(
        941360,
        1,
        Critical,
        "JSFuck / hieroglyphy obfuscation",
        T_INPUT,
        Pattern(Text, r"!!?\[\]|\[\]\[\(?!|\(\+\[\]\)|\+!\+\[\]"),
    ),
    rule(
        941370,
        1,
        Critical,
        "JavaScript global variable",
        T_INPUT,
        Pattern(
            Text,
            r"\b(?:window|self|top|parent|frames|document|globalthis|this)\s*\[\s*[\x22'`(]|\b(?:window|self|top|parent|globalthis)\s*\.\s*(?:alert|eval|prompt|confirm|execscript|settimeout|setinterval|atob)\b|\b(?:document|window|self|top|parent|globalthis)\s*(?:/\*[^*]*\*/\s*)+\)?\s*(?:/\*[^*]*\*/\s*)*[.\[]|\(\s*(?:document|window|self|top|parent|globalthis)\s*\)\s*[.\[]",
        ),
    ),
    rule(
        941390,
        1,
        Critical,
        "JavaScript method call",
        T_INPUT,
        Pattern(
            Text,
            r"\b(?:eval|settimeout|setinterval|execscript|atob|btoa|importscripts|new\s+function)\s*[(`]|\b(?:alert|prompt|confirm|fetch)[(`]|[;)}'\x22`]\s*(?:alert|prompt|confirm|fetch)\s*\(|\b(?:alert|prompt|confirm|eval)\s*(?:\?\.\s*\(|\.\s*(?:call|apply|bind)\s*\()|\(\s*(?:alert|prompt|confirm|eval)\s*\)[(`]",
        ),
    ),
    rule(
        942100,
        1,
        Critical,
        "SQL injection attack detected via libinjection",
        T_INPUT,
        LibinjectionSqli,
    ),
    rule(
        942140,
        1,
        Critical,
        "SQL injection: common database names",
        T_ARGS_PATH,
        Pattern(
            Sql,
            r"\b(?:information_schema|tempdb|msdb|schema_name|mysql\.(?:user|db|host|proc)|performance_schema|pg_(?:catalog|shadow|user|roles|authid|database|tables|namespace|stat_activity)|sysobjects|syscolumns|sysusers|sys\.(?:tables|objects|columns|databases|sql_logins|server_principals)|msysaccessobjects|msysobjects|msysqueries|msysrelationships|sqlite_(?:master|schema|temp_master)|master\.\.sysdatabases|sysibm\.\w+|syscat\.\w+|master\.\.sys\w+|pg_group|dba_users|all_tables|all_tab_columns|user_tables|user_tab_columns|v\$version|xp_cmdshell|xp_dirtree|xp_regread|sp_oacreate|sp_executesql|sp_makewebtask|dbms_\w+|utl_(?:http|inaddr|file)|sys_context)\b|\bdb_name\s*\(",
        ),
    ),
    rule(
        942151,
        1,
        Critical,
        "SQL injection: SQL function name",
        T_ARGS_PATH_HDR,
        Pattern(
            Sql,
            r"\b(?:load_file|extractvalue|updatexml|group_concat|concat_ws|json_(?:extract|depth|keys|object|array|length|type|valid)|make_set|name_const|row_count|found_rows|benchmark|pg_sleep|pg_read_file|lo_import|fn_varbintohexstr|sys\.fn_\w+|gtid_subset|st_latfromgeohash|utl_inaddr\.get_host_name|dbms_pipe\.receive_message|ctxsys\.drithsx\.sn|randomblob|unhex|ifnull|nullif|substring_index|char_length|mid|substr|substring|ascii|char|chr|ord|hex|version|database|schema|user|current_user|system_user|session_user|sleep|concat|iif|elt|xmltype|to_char|conv|soundex|md5|sha1|rand|floor|count|length|if)\((?:\s*(?:\)|\d|['\x22@(]|select\b|0x|null\b|\w+\s*[,)]))|\b(?:load_file|extractvalue|updatexml|group_concat|concat_ws|concat|make_set|name_const|benchmark|coalesce|uncompress|compress|xmltype|current_user|session_user|system_user|unhex|ifnull|nullif|isnull|substring_index|substring|substr|strcmp|sysdate|rtrim|ltrim|find_in_set|sqlite_\w+|jsonb?_\w+|starts_with|unistr|md5|sha1|sha2|pg_\w+|char_length|to_char|to_number|sqrt|sin|cos)\s*\\?\(|\b(?:database|insert|trim|decode|encode|hex|mid|ord|pow|rand|user|version|ascii|char|schema|sleep)\W{0,2}\(\s*$",
        ),
    ),
    rule(
        942160,
        1,
        Critical,
        "SQL injection: blind test with sleep() or benchmark()",
        T_ARGS_PATH,
        Pattern(
            Sql,
            r"\bsleep\s*\(\s*(?:\d*\.?\d+\s*\)|-?[\d.]+\s*(?:[-+*/%^]|div\b|mod\b)|\w+\s*\()|\bbenchmark\s*\(.{1,100},.{1,200}\)",
        ),
    ),
    rule(
        942170,
        1,
        Critical,
        "SQL injection: blind test with a conditional or delay right after select or ;",
        T_ARGS_PATH,
        Pattern(
            Sql,
            r"(?:\bselect|;)\s*(?:benchmark|if|sleep|pg_sleep)\s*\(\s*\(?\s*[\w'\x22@]",
        ),
    ),
    rule(
        942190,
        1,
        Critical,
        "SQL injection: MSSQL code execution and information gathering",
        T_ARGS_PATH,
        Pattern(
            Sql,
            r"\bunion\s+(?:all\s+|distinct\s+)?[(\s]*select\b|\bexec(?:ute)?\s+(?:master\.|xp_|sp_)|;\s*(?:exec|execute|declare|shutdown)\b|\bdeclare\s+@\w+\s|\bopenrowset\s*\(|\bopendatasource\s*\(|\binto\s+(?:out|dump)file\b|\bselect\s+@@\w+|\b@@(?:version|datadir|hostname|basedir|servername)\b|\bfrom\s+dual\b|\bwaitfor\s+(?:delay|time)\b|\bselect\s+(?:current_user|session_user|system_user|current_database\s*\(|current\s+(?:server|schema|user)\b|version\s*\(\s*\))|\bbackup\s+database\s+\w+\s+to\s+disk",
        ),
    ),
    rule(
        942220,
        1,
        Critical,
        "SQL injection: magic number that crashes number parsing",
        T_ARGS_PATH,
        Pattern(Text, r"\b2\.2250738585072011e-308\b"),
    ),
    rule(
        942230,
        1,
        Critical,
        "SQL injection: conditional attempt",
        T_ARGS_PATH,
        Pattern(
            Sql,
            r"[\s()]case\s*\(|\)\s*like\s*\(|\bcase\s+when\b.{1,200}\bthen\b|\bselect\b.{1,100}\bhaving\s+\S+\s*[^\w\s]|\bif\s*\(\s*[\w@'\x22(]+\s*[=<>~!]|\biif\s*\(",
        ),
    ),
    rule(
        942240,
        1,
        Critical,
        "SQL injection: MySQL charset switch and MSSQL DoS",
        T_ARGS_PATH,
        Pattern(
            Sql,
            r"\balter\s*\w*\s*character\s+set\b|\bwaitfor\s+(?:delay|time)\s*['\x22\d]|;\s*waitfor\b",
        ),
    ),
    rule(
        942250,
        1,
        Critical,
        "SQL injection: MATCH AGAINST, MERGE and EXECUTE IMMEDIATE",
        T_ARGS_PATH,
        Pattern(
            Sql,
            r"\bmatch\s*\(.{1,100}\)\s*against\s*\(|\bmerge\s+into\b|\bexecute\s+immediate\b",
        ),
    ),
    rule(
        942270,
        1,
        Critical,
        "SQL injection: basic union select from",
        T_ARGS_PATH,
        Pattern(Sql, r"\bunion\b.{0,100}\bselect\b.{0,200}\bfrom\b"),
    ),
    rule(
        942280,
        1,
        Critical,
        "SQL injection: pg_sleep, WAITFOR DELAY and shutdown",
        T_ARGS_PATH_UA,
        Pattern(
            Sql,
            r"\bpg_sleep\s*\(|\bselect\s+pg_sleep\b|\bwaitfor\s+delay\b|;\s*shutdown\s*(?:--|#|/\*|;|$)",
        ),
    ),
    rule(
        942290,
        1,
        Critical,
        "MongoDB SQL injection",
        Targets(T_ARGS.0 | Targets::ARG_NAMES.0),
        Pattern(
            Text,
            r"\[\s*\$(?:ne|eq|lte?|gte?|n?in|mod|all|size|exists|type|slice|x?or|div|like|between|and|regex|where|nor|not|elemmatch|expr)\s*\]|^\$(?:ne|eq|lte?|gte?|n?in|mod|all|size|exists|type|slice|x?or|and|regex|where|nor|not|elemmatch|expr|text|jsonschema|function|accumulator)$",
        ),
    ),
    rule(
        942320,
        1,
        Critical,
        "SQL injection: stored procedure or PostgreSQL function",
        T_ARGS_PATH,
        Pattern(
            Sql,
            r"\bprocedure\s+analyse\s*\(|(?:\b\w+|\))\s*::\s*(?:int[248]?|integer|bigint|smallint|text|varchar|numeric|regclass|oid|bytea|real|float[48]?|double\s+precision|bool(?:ean)?)\b|\bdiv\s*\(\s*-?[\d.]+\s*,|\blo_(?:get|import|export|creat|create|open|put|from_bytea|unlink)\s*\(",
        ),
    ),
    rule(
        942350,
        1,
        Critical,
        "SQL injection: UDF or data structure manipulation",
        T_ARGS_PATH,
        Pattern(
            Sql,
            r"\bcreate\s+function\s+.{1,100}\s+returns\b|;\s*(?:drop|alter|truncate|create)\s+(?:table|database|schema|function|procedure|user|view|index|trigger)\b|;\s*truncate\b|;\s*replace\s+(?:into\s+)?\w+\s*\([^)]*\)\s*values\b|;\s*(?:delete\s+from|insert\s+into|update\s+\S+\s+set|select\s+.{1,100}\bfrom|grant\s+\w|revoke\s+\w|rename\s+table|load\s+data)\b",
        ),
    ),
    rule(
        942360,
        1,
        Critical,
        "SQL injection: concatenated basic attempts",
        T_ARGS_PATH,
        Pattern(
            Sql,
            r"^[\W\d]*['\x22`);]\s*(?:select|union|insert|update|delete|drop|alter|create|exec|execute|declare|truncate|shutdown|rename|load_file|grant|revoke|having|order\s+by|group\s+by|and|or|xor|div|like|rlike|regexp|sounds\s+like)\b[\s(@'\x22-]|\b(?:select|insert|update|delete)\s*\(\s*(?:select\b|@)|\b\d+\s+as\s*['\x22`]\w*['\x22`]?\s*from\b|(?:^|[/;])\s*(?:create|drop|alter|truncate)\s+table\s+\w",
        ),
    ),
    rule(
        942430,
        2,
        Warning,
        "restricted SQL character anomaly (args): 12 or more special characters",
        T_ARGS,
        Pattern(
            Text,
            r"(?:[~!@#$%^&*()\-+={}\[\]|:;\x22'`<>][^~!@#$%^&*()\-+={}\[\]|:;\x22'`<>]*){12}",
        ),
    ),
    rule(
        942431,
        3,
        Warning,
        "restricted SQL character anomaly (args): 6 or more special characters",
        T_ARGS,
        Pattern(
            Text,
            r"(?:[~!@#$%^&*()\-+={}\[\]|:;\x22'`<>][^~!@#$%^&*()\-+={}\[\]|:;\x22'`<>]*){6}",
        ),
    ),
    rule(
        942432,
        4,
        Warning,
        "restricted SQL character anomaly (args): 2 or more special characters",
        T_ARGS,
        Pattern(
            Text,
            r"(?:[~!@#$%^&*()\-+={}\[\]|:;\x22'`<>][^~!@#$%^&*()\-+={}\[\]|:;\x22'`<>]*){2}",
        ),
    ),
    rule(
        942500,
        1,
        Critical,
        "SQL injection: MySQL in-line comment",
        T_ARGS_PATH,
        Pattern(Text, r"/\*[!+](?:[\w\s=_\-()]+)?\*/|/\*!\d*\s*\w"),
    ),
    rule(
        942540,
        1,
        Critical,
        "SQL injection: quote and statement end after an email address",
        T_ARGS_PATH,
        Pattern(Sql, r"^[\w.+-]*@[a-z0-9-]+(?:\.[a-z0-9-]+)+['\x22`]\s*;"),
    ),
    rule(
        942550,
        1,
        Critical,
        "SQL injection: JSON operator or cast on a JSON literal",
        T_ARGS_PATH,
        Pattern(
            Sql,
            r#"'[\[{][^']*[\]}]'\s*(?:::\s*jsonb?\b|->>?|#>>?|#-|@[>?@]|<@|\?[|&]?\s*(?:'|array\b)|[<>]=?\s*')|::\s*jsonb?\s*(?:->>?|#>>?|#-|@[>?@]|<@|\?[|&]?|[<>]=?|=|-)\s*['\x22(\d]|\)\s*::\s*(?:jsonb?|int|integer|text)\b"#,
        ),
    ),
    rule(
        942560,
        1,
        Critical,
        "SQL injection: MySQL scientific notation bypass",
        T_ARGS_PATH,
        Pattern(Sql, r"\b\d+\.e(?:\(|\.[a-z_]{3,}\b)"),
    ),
    rule(
        942910,
        1,
        Critical,
        "SQL injection: tautology or stacked query after a quote",
        T_ARGS_PATH,
        Pattern(
            Sql,
            r"['\x22`]\s*(?:\)\s*)*(?:or|and|xor|\|\||&&)\s*\(?\s*(?:['\x22`]?\w+['\x22`]?\s*(?:=|<>|!=|>|<|in\s*\()|not\b|true\b|false\b|\d+\s*(?:--|#|/\*|$))|['\x22`]\s*;\s*(?:select|insert|update|delete|drop|exec|declare|shutdown)\b|['\x22`]\s*(?:--|#)\s*$",
        ),
    ),
    rule(
        943100,
        1,
        Critical,
        "session fixation: setting cookie values in HTML",
        T_ARGS,
        Pattern(
            Text,
            r"\.cookie\b.*;\W*(?:expires|domain)\W*=|\bhttp-equiv\W+set-cookie\b",
        ),
    ),
    rule(
        ids::SESSION_ID_OFF_DOMAIN,
        1,
        Critical,
        "session fixation: session id parameter name with off-domain referer",
        T_NONE,
        Request,
    ),
    rule(
        ids::SESSION_ID_NO_REFERER,
        1,
        Critical,
        "session fixation: session id parameter name with no referer",
        T_NONE,
        Request,
    ),
    // 944: Java.
    rule(
        944100,
        1,
        Critical,
        "remote command execution: suspicious Java class",
        T_ALL,
        Pattern(
            Text,
            r"java\.lang\.(?:runtime|processbuilder|process|system|class|reflect|thread)\b|\bruntime\.getruntime\s*\(|\bprocessbuilder\s*\(|\.getruntime\(\)\.exec\b",
        ),
    ),
    rule(
        944110,
        1,
        Critical,
        "remote command execution: Java process spawn",
        T_ALL,
        Pattern(
            Text,
            r"\b(?:runtime|processbuilder)\b.{0,200}\b(?:unmarshaller|base64data|java\.|exec\s*\()|\bjava\.(?:runtime|processbuilder)\b",
        ),
    ),
    rule(
        944120,
        1,
        Critical,
        "remote command execution: Java serialization",
        T_ALL,
        Pattern(
            Text,
            r"\b(?:clonetransformer|forclosure|instantiatefactory|instantiatetransformer|invokertransformer|prototypeclonefactory|prototypeserializationfactory|whileclosure|chainedtransformer|constanttransformer|lazymap|templatesimpl|xmldecoder|jdbcrowsetimpl|annotationinvocationhandler)\b",
        ),
    ),
    rule(
        944130,
        1,
        Critical,
        "suspicious Java class",
        T_ALL,
        Pattern(
            Text,
            r"\bjava\.(?:io\.(?:file|objectinputstream|fileoutputstream)|net\.(?:url|socket|urlclassloader)|beans\.xmldecoder|rmi\.)|\bjavax\.(?:script|naming|management)\b|\borg\.apache\.commons\.collections|\bcom\.sun\.(?:org\.apache|jndi|rowset)|\bbsh\.interpreter|#_memberaccess|@java\.lang|\bclass\.forname\s*\(|\.getclass\s*\(\s*\)\.|\bclass\.module\.classloader|\bclassloader\.(?:resources|urls)|\bognlcontext\b|#context\[|\(#\w+=|\bjava\.lang\b|\bjavax?\.(?:io|lang|net|nio|rmi|beans|script|naming|management|xml|sql)\.\w|\borg\.omg\.corba\b|\borg\.apache\.(?:commons|xalan|bcel|tomcat|catalina|struts2?)\b|\bcom\.sun\.\w+\.|\bcom\.opensymphony\.xwork2?\b|\borg\.springframework\.\w",
        ),
    ),
    rule(
        944140,
        1,
        Critical,
        "Java server page file upload",
        Targets::FILES,
        Pattern(Text, r#"\.\s*jsp[xf]?[\s.]*$"#),
    ),
    rule(
        944150,
        1,
        Critical,
        "Log4Shell / JNDI lookup",
        T_ALL,
        Pattern(
            Text,
            r"\$\{[^}]{0,40}(?:jndi|ldaps?|rmi|dns|iiop|corba|nds|nis|lower:|upper:|env:|sys:|date:|main:|java:|::-|base64:|\$\{)|jndi\s*:\s*(?:ldaps?|rmi|dns|iiop|corba|nds|nis|https?)\s*:",
        ),
    ),
    rule(
        944200,
        1,
        Critical,
        "Java deserialization magic bytes",
        T_ALL,
        Pattern(Raw, r"\xac\xed\x00\x05|\bro0ab[a-z0-9+/]|\baced0005"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_sorted_and_in_crs_families() {
        for pair in RULES.windows(2) {
            assert!(
                pair[0].id < pair[1].id,
                "{} then {}",
                pair[0].id,
                pair[1].id
            );
        }
        for rule in RULES {
            let family = rule.id / 1000;
            assert!(
                matches!(family, 913 | 920 | 921 | 922 | 930..=934 | 941..=944),
                "{}",
                rule.id
            );
            assert!((1..=4).contains(&rule.paranoia));
        }
    }
}
