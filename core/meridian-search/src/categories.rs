//! The catalog's categories, as the search service knows them (names for the index, the facets
//! and completions), refreshed over `catalog.categories`.

use std::{
    collections::HashMap,
    sync::{
        RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use meridian_contracts::catalog::{CategoryInfo, ListCategories};
use meridian_jetstream::Naming;
use meridian_platform::rpc::RpcError;
use uuid::Uuid;

pub struct Categories {
    nats: async_nats::Client,
    naming: Naming,
    by_id: RwLock<HashMap<Uuid, CategoryInfo>>,
    /// Refreshes one at a time; `refreshes` counts those completed.
    refreshing: tokio::sync::Mutex<()>,
    refreshes: AtomicU64,
}

impl Categories {
    pub fn new(nats: async_nats::Client, naming: Naming) -> Self {
        Categories {
            nats,
            naming,
            by_id: RwLock::new(HashMap::new()),
            refreshing: tokio::sync::Mutex::new(()),
            refreshes: AtomicU64::new(0),
        }
    }

    /// Fetches the list again. Callers that arrive while a refresh is running wait for the
    /// next one to start and finish, so each sees a list fetched after it asked; concurrent
    /// callers share that one fetch.
    pub async fn refresh(&self) -> Result<(), RpcError> {
        let asked_at = self.refreshes.load(Ordering::Acquire);
        let _one_at_a_time = self.refreshing.lock().await;
        // A refresh that started after we asked has completed meanwhile.
        if self.refreshes.load(Ordering::Acquire) > asked_at + 1 {
            return Ok(());
        }
        let list = meridian_platform::rpc::call::<ListCategories>(
            &self.nats,
            &self.naming,
            &(),
            Duration::from_secs(5),
        )
        .await?;
        *self.by_id.write().unwrap_or_else(|e| e.into_inner()) =
            list.into_iter().map(|c| (c.id, c)).collect();
        self.refreshes.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Uuid, CategoryInfo>> {
        self.by_id.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn name(&self, id: Uuid) -> Option<String> {
        self.read().get(&id).map(|c| c.name.clone())
    }

    /// Every category, by name.
    pub fn all(&self) -> Vec<CategoryInfo> {
        let mut all: Vec<CategoryInfo> = self.read().values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        all
    }
}
