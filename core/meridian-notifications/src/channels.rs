//! The ways a message leaves: e-mail over SMTP (lettre), SMS through Twilio's Messages API and
//! push through Firebase Cloud Messaging's HTTP v1 API, each at a configurable address (tests
//! run a real SMTP server and local fakes of the two HTTP APIs).

use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
};
use uuid::Uuid;

use crate::templates::Rendered;

/// A message ready to go.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The event (or request) it answers: also its `Message-ID`, so a copy can be recognised.
    pub id: Uuid,
    pub to: String,
    pub rendered: Rendered,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// May work later (the server is down, busy, timed out).
    #[error("{0}")]
    Transient(String),
    /// Will never work (the address is refused, the request is malformed).
    #[error("{0}")]
    Permanent(String),
}

/// One channel's provider.
pub trait Provider: Send + Sync {
    fn send<'a>(&'a self, message: &'a Outgoing) -> BoxFuture<'a, Result<(), SendError>>;
}

/// The providers this process has, by channel; a channel without one refuses to send.
#[derive(Clone, Default)]
pub struct Channels {
    pub email: Option<Arc<dyn Provider>>,
    pub sms: Option<Arc<dyn Provider>>,
    pub push: Option<Arc<dyn Provider>>,
}

impl Channels {
    pub fn get(&self, channel: &str) -> Option<&Arc<dyn Provider>> {
        match channel {
            "email" => self.email.as_ref(),
            "sms" => self.sms.as_ref(),
            "push" => self.push.as_ref(),
            _ => None,
        }
    }

    /// From the environment: `MERIDIAN_SMTP_URL` (default the dev mail catcher,
    /// `smtp://127.0.0.1:14025`) and `MERIDIAN_MAIL_FROM`; SMS with `MERIDIAN_TWILIO_ACCOUNT_SID`,
    /// `_AUTH_TOKEN`, `_FROM` (and `_BASE_URL`); push with `MERIDIAN_FCM_PROJECT`, `_TOKEN` (and
    /// `_BASE_URL`).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let smtp = get("MERIDIAN_SMTP_URL").unwrap_or_else(|| "smtp://127.0.0.1:14025".into());
        let from = get("MERIDIAN_MAIL_FROM")
            .unwrap_or_else(|| "Meridian <no-reply@meridian.local>".into());
        let email: Arc<dyn Provider> = Arc::new(Email::new(&smtp, &from)?);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let sms = get("MERIDIAN_TWILIO_ACCOUNT_SID").map(|account| {
            Arc::new(Twilio {
                http: http.clone(),
                base: get("MERIDIAN_TWILIO_BASE_URL")
                    .unwrap_or_else(|| "https://api.twilio.com".into()),
                account,
                token: get("MERIDIAN_TWILIO_AUTH_TOKEN").unwrap_or_default(),
                from: get("MERIDIAN_TWILIO_FROM").unwrap_or_default(),
            }) as Arc<dyn Provider>
        });
        let push = get("MERIDIAN_FCM_PROJECT").map(|project| {
            Arc::new(Fcm {
                http,
                base: get("MERIDIAN_FCM_BASE_URL")
                    .unwrap_or_else(|| "https://fcm.googleapis.com".into()),
                project,
                token: get("MERIDIAN_FCM_TOKEN").unwrap_or_default(),
            }) as Arc<dyn Provider>
        });
        Ok(Channels {
            email: Some(email),
            sms,
            push,
        })
    }
}

pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Email {
    /// `url` as lettre reads it: `smtp://host:port` (plain), `smtp://host:587?tls=required`
    /// (STARTTLS), `smtps://user:password@host` (TLS).
    pub fn new(url: &str, from: &str) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("MERIDIAN_SMTP_URL is not an SMTP URL: {e}"))?
            .timeout(Some(Duration::from_secs(10)))
            .build();
        let from = from
            .parse()
            .map_err(|e| anyhow::anyhow!("MERIDIAN_MAIL_FROM is not an address: {e}"))?;
        Ok(Email { transport, from })
    }
}

impl Provider for Email {
    fn send<'a>(&'a self, message: &'a Outgoing) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let to: Mailbox = message
                .to
                .parse()
                .map_err(|e| SendError::Permanent(format!("not an e-mail address: {e}")))?;
            let email = Message::builder()
                .from(self.from.clone())
                .to(to)
                .subject(&message.rendered.subject)
                .message_id(Some(format!("<{}@meridian>", message.id)))
                .multipart(MultiPart::alternative_plain_html(
                    message.rendered.text.clone(),
                    message.rendered.html.clone(),
                ))
                .map_err(|e| SendError::Permanent(e.to_string()))?;
            self.transport.send(email).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    SendError::Permanent(e.to_string())
                } else {
                    SendError::Transient(e.to_string())
                }
            })
        })
    }
}

/// 4xx answers will not change by retrying (but 408 and 429 may).
fn http_error(status: reqwest::StatusCode, body: String) -> SendError {
    let detail = format!("{status}: {}", body.chars().take(300).collect::<String>());
    if status.is_client_error()
        && status != reqwest::StatusCode::REQUEST_TIMEOUT
        && status != reqwest::StatusCode::TOO_MANY_REQUESTS
    {
        SendError::Permanent(detail)
    } else {
        SendError::Transient(detail)
    }
}

/// Twilio's `POST /2010-04-01/Accounts/{sid}/Messages.json` (form fields `To`, `From`, `Body`;
/// HTTP basic auth with the account SID and auth token).
pub struct Twilio {
    http: reqwest::Client,
    base: String,
    account: String,
    token: String,
    from: String,
}

impl Provider for Twilio {
    fn send<'a>(&'a self, message: &'a Outgoing) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let url = format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                self.base.trim_end_matches('/'),
                self.account
            );
            let response = self
                .http
                .post(url)
                .basic_auth(&self.account, Some(&self.token))
                .form(&[
                    ("To", message.to.as_str()),
                    ("From", self.from.as_str()),
                    ("Body", message.rendered.text.trim_end()),
                ])
                .send()
                .await
                .map_err(|e| SendError::Transient(e.to_string()))?;
            if response.status().is_success() {
                return Ok(());
            }
            let status = response.status();
            Err(http_error(
                status,
                response.text().await.unwrap_or_default(),
            ))
        })
    }
}

/// FCM's `POST /v1/projects/{project}/messages:send` with a bearer token:
/// `{"message": {"token", "notification": {"title", "body"}}}`.
pub struct Fcm {
    http: reqwest::Client,
    base: String,
    project: String,
    token: String,
}

impl Provider for Fcm {
    fn send<'a>(&'a self, message: &'a Outgoing) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let url = format!(
                "{}/v1/projects/{}/messages:send",
                self.base.trim_end_matches('/'),
                self.project
            );
            let body = serde_json::json!({"message": {
                "token": message.to,
                "notification": {
                    "title": message.rendered.subject,
                    "body": message.rendered.text.trim_end(),
                },
            }});
            let response = self
                .http
                .post(url)
                .bearer_auth(&self.token)
                .json(&body)
                .send()
                .await
                .map_err(|e| SendError::Transient(e.to_string()))?;
            if response.status().is_success() {
                return Ok(());
            }
            let status = response.status();
            Err(http_error(
                status,
                response.text().await.unwrap_or_default(),
            ))
        })
    }
}
