//! The messages the platform sends, each as a subject, a plain-text body and an HTML body.
//!
//! A template names `{{field}}`s of the message's data; in HTML every value is escaped, so data
//! from a shopper (a name, an address) is never markup. A field the data lacks renders empty.

use std::fmt::Write as _;

use serde_json::Value;

pub struct Template {
    pub name: &'static str,
    pub subject: &'static str,
    pub text: &'static str,
    pub html: &'static str,
}

pub const TEMPLATES: &[Template] = &[
    Template {
        name: "welcome",
        subject: "Welcome to Meridian, {{name}}",
        text: "Hello {{name}},\n\nyour Meridian account is ready. Happy shopping!\n",
        html: "<p>Hello {{name}},</p><p>your Meridian account is ready. Happy shopping!</p>",
    },
    Template {
        name: "order_placed",
        subject: "We received your order {{order_ref}}",
        text: "Hello {{name}},\n\nwe received your order {{order_ref}} for {{total}}. \
               We will confirm it once the payment is through.\n",
        html: "<p>Hello {{name}},</p><p>we received your order <b>{{order_ref}}</b> for \
               {{total}}. We will confirm it once the payment is through.</p>",
    },
    Template {
        name: "order_confirmed",
        subject: "Your order {{order_ref}} is confirmed",
        text: "Hello {{name}},\n\nyour order {{order_ref}} is confirmed and will ship soon.\n",
        html: "<p>Hello {{name}},</p><p>your order <b>{{order_ref}}</b> is confirmed and will \
               ship soon.</p>",
    },
    Template {
        name: "order_shipped",
        subject: "Your order {{order_ref}} is on its way",
        text: "Hello {{name}},\n\nyour order {{order_ref}} has shipped.\n",
        html: "<p>Hello {{name}},</p><p>your order <b>{{order_ref}}</b> has shipped.</p>",
    },
    Template {
        name: "payment_succeeded",
        subject: "Payment received for order {{order_ref}}",
        text: "Hello {{name}},\n\nwe received your payment of {{amount}} for order {{order_ref}}.\n",
        html: "<p>Hello {{name}},</p><p>we received your payment of {{amount}} for order \
               <b>{{order_ref}}</b>.</p>",
    },
    Template {
        name: "payment_failed",
        subject: "Your payment for order {{order_ref}} did not go through",
        text: "Hello {{name}},\n\nyour payment of {{amount}} for order {{order_ref}} failed \
               ({{reason}}). Your order was not charged; you can try another card.\n",
        html: "<p>Hello {{name}},</p><p>your payment of {{amount}} for order \
               <b>{{order_ref}}</b> failed ({{reason}}). Your order was not charged; you can \
               try another card.</p>",
    },
    Template {
        name: "message",
        subject: "{{subject}}",
        text: "{{body}}\n",
        html: "<p>{{body}}</p>",
    },
];

pub fn find(name: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name)
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Template {
    pub fn render(&self, data: &Value) -> Rendered {
        Rendered {
            // A subject is one line whatever the data holds.
            subject: fill(self.subject, data, false).replace(['\r', '\n'], " "),
            text: fill(self.text, data, false),
            html: fill(self.html, data, true),
        }
    }
}

fn fill(template: &str, data: &Value, html: bool) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let value = match data.get(after[..end].trim()) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        if html {
            escape_into(&value, &mut out);
        } else {
            out.push_str(&value);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn escape_into(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("<br>"),
            c => {
                let _ = out.write_char(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_fill_in_and_html_is_escaped() {
        let rendered = find("order_confirmed")
            .expect("template")
            .render(&serde_json::json!({
                "name": "Ana <script>", "order_ref": "A1B2"
            }));
        assert_eq!(rendered.subject, "Your order A1B2 is confirmed");
        assert!(rendered.text.starts_with("Hello Ana <script>,"));
        assert!(
            rendered
                .html
                .starts_with("<p>Hello Ana &lt;script&gt;,</p>")
        );
    }

    #[test]
    fn subjects_stay_on_one_line_and_missing_fields_are_empty() {
        let rendered = find("message")
            .expect("template")
            .render(&serde_json::json!({"subject": "Hi\r\nBcc: x@evil", "body": 42}));
        assert_eq!(rendered.subject, "Hi  Bcc: x@evil");
        assert_eq!(rendered.text, "42\n");
        assert_eq!(
            find("welcome")
                .expect("t")
                .render(&serde_json::json!({}))
                .subject,
            "Welcome to Meridian, "
        );
    }
}
