//! Review text is plain text: markup is stripped on the way in, so no client can be handed
//! someone else's HTML, whatever it does with the text.

/// `text` without tags (`<...>`, an unclosed one to the end), HTML comments and control
/// characters (newlines and tabs stay), trimmed. A `<` that opens no tag ("3 < 5", "<3") is
/// kept.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let end = if after.starts_with("<!--") {
            after.find("-->").map(|i| i + 3)
        } else if after[1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '!' || c == '?')
        {
            // An unclosed tag runs to the end: dropped with it.
            Some(after.find('>').map_or(after.len(), |i| i + 1))
        } else {
            None
        };
        match end {
            Some(end) => rest = &after[end..],
            None => {
                out.push('<');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::plain;

    #[test]
    fn tags_comments_and_controls_go_text_stays() {
        assert_eq!(
            plain("<b>Great</b> kettle<script>alert(1)</script>!"),
            "Great kettlealert(1)!"
        );
        assert_eq!(plain("3 < 5 and 7 > 2"), "3 < 5 and 7 > 2");
        assert_eq!(plain("a<!-- hidden <b> -->b"), "ab");
        assert_eq!(plain("  line one\nline\u{0}two\u{7} "), "line one\nlinetwo");
        assert_eq!(plain("ok <img src=x onerror=alert(1)"), "ok");
        assert_eq!(plain("I <3 it"), "I <3 it");
        assert_eq!(plain("<<b>>x"), "<>x");
    }
}
