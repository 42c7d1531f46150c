//! The notifications service: e-mail (and SMS and push) for what happens to a shopper, sent
//! once per event.
//!
//! - [`worker`]: from an event to a message sent once (the inbox), with retries, back-off and
//!   dead letters.
//! - [`channels`]: the providers: SMTP (lettre), Twilio and FCM over HTTP.
//! - [`templates`]: subjects, text and HTML bodies.
//! - [`routes`]: `POST /notifications/send`, the dead letters and their replay (admin).
//!
//! The worker reads four durable consumers, shared by the replicas: the users stream
//! (registrations), the orders stream (placed, confirmed, shipped), the payments stream
//! (succeeded, failed) and its own stream (send requests and replays).
//!
//! Invariant: a message is sent only while its event's inbox row is locked, and an event is
//! acknowledged only after its row says `sent` (or it was dead-lettered), so each event gives
//! one message however often it is delivered. The one window left is a worker dying between
//! the provider's acceptance and the row's update; the copy then sent carries the same
//! `Message-ID`.

pub mod channels;
pub mod routes;
pub mod templates;
pub mod worker;

use meridian_jetstream::StreamKind;
use meridian_platform::{Mounted, ServiceContext};
use sqlx::PgPool;

use crate::{channels::Channels, worker::Worker};

/// The Postgres schema this service owns.
pub const SCHEMA: &str = "notifications";

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    meridian_platform::db::migrate(pool, SCHEMA, sqlx::migrate!("./migrations")).await
}

#[derive(Clone)]
pub struct NotificationsState {
    pub pool: PgPool,
    pub jetstream: async_nats::jetstream::Context,
    pub naming: meridian_jetstream::Naming,
    pub region: String,
    pub channels: Channels,
}

pub async fn start(ctx: &ServiceContext, pool: PgPool) -> anyhow::Result<Mounted> {
    let channels = Channels::from_env(|name| std::env::var(name).ok())?;
    let mut tasks = Vec::new();
    for stream in [
        StreamKind::Users,
        StreamKind::Orders,
        StreamKind::Payments,
        StreamKind::Notifications,
    ] {
        let config = meridian_jetstream::consumers::notifications(&ctx.naming, stream);
        let worker = Worker {
            pool: pool.clone(),
            nats: ctx.nats.clone(),
            jetstream: ctx.jetstream.clone(),
            naming: ctx.naming.clone(),
            region: ctx.region.clone(),
            channels: channels.clone(),
            consumer: config.durable_name.clone().unwrap_or_default(),
        };
        tasks.push(tokio::spawn(meridian_platform::consume::run(
            ctx.jetstream.clone(),
            ctx.naming.clone(),
            stream,
            config,
            move |event, delivered| {
                let worker = worker.clone();
                async move { worker.handle(event, delivered).await }
            },
            ctx.shutdown.clone(),
        )));
    }
    let state = NotificationsState {
        pool,
        jetstream: ctx.jetstream.clone(),
        naming: ctx.naming.clone(),
        region: ctx.region.clone(),
        channels,
    };
    Ok(Mounted {
        name: "notifications",
        router: routes::router(state),
        openapi: routes::openapi(),
        tasks,
    })
}
