//! The optional global rate limit: the same GCRA quotas, kept in Redis so that every edge node
//! counts against one budget (`MERIDIAN_EDGE_REDIS_URL`).
//!
//! The local limiter ([`crate::ratelimit`]) answers first, from memory; only a request it lets
//! through asks Redis, in one round trip: a script checks every bucket the request is charged
//! to and charges them only if all have room, on Redis' clock (`TIME`), so nodes with skewed
//! clocks still agree. Redis being unreachable is not a reason to refuse shoppers: the edge then
//! falls back to its local limits (asking again after a few seconds) and says so in its log,
//! once a minute.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use fred::clients::Client;
use fred::interfaces::{ClientLike, LuaInterface};
use fred::prelude::{Builder, Config, ReconnectPolicy};
use tokio::sync::OnceCell;

use crate::ratelimit::{Decision, Quota};

/// KEYS: the buckets. ARGV: per bucket, the interval and the burst (µs, count).
/// Returns {allowed, remaining, retry_after_us, reset_us, burst} for the tightest bucket.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local next_tats, best = {}, nil
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tolerance = interval * burst
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local ahead = tat + interval - now
  local answer
  if ahead > tolerance then
    answer = {0, 0, ahead - tolerance, tat - now, burst}
  else
    answer = {1, math.floor((tolerance - ahead) / interval), 0, ahead, burst}
  end
  next_tats[i] = tat + interval
  if best == nil or answer[1] < best[1] or (answer[1] == best[1] and answer[2] < best[2]) then
    best = answer
  end
end
if best[1] == 1 then
  for i, key in ipairs(KEYS) do
    redis.call('SET', key, next_tats[i], 'PX', math.ceil((next_tats[i] - now) / 1000) + 1)
  end
end
return best
";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const COMMAND_TIMEOUT: Duration = Duration::from_millis(200);
const WARN_EVERY: Duration = Duration::from_secs(60);
/// After a failure, requests stop asking Redis for this long (so an unreachable Redis costs
/// one timeout per pause, not one per request).
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(5);

pub struct GlobalLimiter {
    url: String,
    prefix: String,
    client: OnceCell<Client>,
    last_warning: Mutex<Option<Instant>>,
    paused_until: Mutex<Option<Instant>>,
}

impl GlobalLimiter {
    pub fn new(url: String, prefix: String) -> Self {
        GlobalLimiter {
            url,
            prefix,
            client: OnceCell::new(),
            last_warning: Mutex::new(None),
            paused_until: Mutex::new(None),
        }
    }

    async fn client(&self) -> Result<&Client, String> {
        self.client
            .get_or_try_init(|| async {
                let config = Config::from_url(&self.url).map_err(|e| e.to_string())?;
                let client = Builder::from_config(config)
                    .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
                    .with_connection_config(|c| c.connection_timeout = CONNECT_TIMEOUT)
                    .with_performance_config(|p| p.default_command_timeout = COMMAND_TIMEOUT)
                    .build()
                    .map_err(|e| e.to_string())?;
                tokio::time::timeout(CONNECT_TIMEOUT, client.init())
                    .await
                    .map_err(|_| "connecting to Redis timed out".to_owned())?
                    .map_err(|e| e.to_string())?;
                Ok(client)
            })
            .await
    }

    /// Charges one request to every `(bucket, quota)`; `None` when Redis could not answer.
    pub async fn check(&self, buckets: &[(String, Quota)]) -> Option<Decision> {
        {
            let paused = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
            if paused.is_some_and(|until| Instant::now() < until) {
                return None;
            }
        }
        match self.try_check(buckets).await {
            Ok(decision) => Some(decision),
            Err(error) => {
                *self.paused_until.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(Instant::now() + PAUSE_AFTER_FAILURE);
                self.warn(&error);
                None
            }
        }
    }

    async fn try_check(&self, buckets: &[(String, Quota)]) -> Result<Decision, String> {
        let client = self.client().await?;
        let keys: Vec<String> = buckets
            .iter()
            .map(|(bucket, _)| format!("{}:rl:{bucket}", self.prefix))
            .collect();
        let args: Vec<String> = buckets
            .iter()
            .flat_map(|(_, quota)| {
                [
                    (quota.interval_ns() / 1000).max(1).to_string(),
                    quota.burst.to_string(),
                ]
            })
            .collect();
        let answer: Vec<i64> = client
            .eval(GCRA, keys, args)
            .await
            .map_err(|e| e.to_string())?;
        let [allowed, remaining, retry_after_us, reset_us, burst] = answer[..] else {
            return Err(format!(
                "unexpected answer from the rate-limit script: {answer:?}"
            ));
        };
        let seconds = |us: i64| u64::try_from(us).unwrap_or(0).div_ceil(1_000_000);
        Ok(Decision {
            allowed: allowed == 1,
            limit: u32::try_from(burst).unwrap_or(0),
            remaining: u32::try_from(remaining).unwrap_or(0),
            reset_s: seconds(reset_us),
            retry_after_s: if allowed == 1 {
                0
            } else {
                seconds(retry_after_us).max(1)
            },
        })
    }

    fn warn(&self, error: &str) {
        let mut last = self.last_warning.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(%error, "global rate limit unavailable; local limits only");
        }
    }
}
