//! The state machine: `apply` turns one command into storage changes, reading the state as the
//! preceding commands (including earlier ones in the same batch) left it. It enforces the
//! invariants that must hold on every replica (no duplicate ids, owner agency exists, ...);
//! permission checks happen before a command is proposed.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use super::command::{AccountChange, AgencyChange, Command, FrameRead, Outcome};
use crate::domain::{AccountHold, Agency, Read, TotpEnrolment, User};
use crate::policy::sessions::SessionRecord;
use crate::storage::{Order, Space, Storage, StorageError, WriteOp, codec, keys};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The command breaks a rule of the state (already exists, unknown owner, ...). Nothing changed.
    #[error("{0}")]
    Rejected(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A stored key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// Writes of a batch not yet on disk; `None` is a deletion.
pub type PendingWrites = BTreeMap<(Space, Vec<u8>), Option<Vec<u8>>>;

/// Storage as seen by a batch of commands: reads see the batch's own pending writes first.
pub struct WriteSet<'a> {
    storage: &'a dyn Storage,
    pending: PendingWrites,
}

impl<'a> WriteSet<'a> {
    pub fn new(storage: &'a dyn Storage) -> Self {
        Self {
            storage,
            pending: BTreeMap::new(),
        }
    }

    pub fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        match self.pending.get(&(space, key.to_vec())) {
            Some(value) => Ok(value.clone()),
            None => self.storage.get(space, key),
        }
    }

    pub fn put(&mut self, space: Space, key: Vec<u8>, value: Vec<u8>) {
        self.pending.insert((space, key), Some(value));
    }

    pub fn delete(&mut self, space: Space, key: Vec<u8>) {
        self.pending.insert((space, key), None);
    }

    pub fn get_record<T: serde::de::DeserializeOwned>(
        &self,
        space: Space,
        key: &[u8],
    ) -> Result<Option<T>, StorageError> {
        self.get(space, key)?
            .map(|bytes| codec::decode(&bytes))
            .transpose()
    }

    pub fn put_record<T: serde::Serialize>(
        &mut self,
        space: Space,
        key: Vec<u8>,
        value: &T,
    ) -> Result<(), StorageError> {
        let bytes = codec::encode(value)?;
        self.put(space, key, bytes);
        Ok(())
    }

    /// A checkpoint to roll back to when a command in the batch is rejected.
    pub fn checkpoint(&self) -> PendingWrites {
        self.pending.clone()
    }

    pub fn rollback(&mut self, checkpoint: PendingWrites) {
        self.pending = checkpoint;
    }

    /// The keys under `prefix` as this batch sees them (stored, plus pending puts, minus
    /// pending deletions), in order.
    pub fn keys_with_prefix(
        &self,
        space: Space,
        prefix: &[u8],
    ) -> Result<Vec<Vec<u8>>, StorageError> {
        let mut end = prefix.to_vec();
        end.push(0xff);
        let mut keys = std::collections::BTreeSet::new();
        self.storage
            .scan(space, prefix, &end, Order::Ascending, &mut |k, _| {
                keys.insert(k.to_vec());
                ControlFlow::Continue(())
            })?;
        for ((s, key), value) in self.pending.range((space, prefix.to_vec())..) {
            if *s != space || !key.starts_with(prefix) {
                break;
            }
            match value {
                Some(_) => keys.insert(key.clone()),
                None => keys.remove(key),
            };
        }
        Ok(keys.into_iter().collect())
    }

    /// Stored records in `[start, end)` (not this batch's pending writes), at most `limit`.
    pub fn scan_committed(
        &self,
        space: Space,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<KeyValue>, StorageError> {
        let mut out = Vec::new();
        self.storage
            .scan(space, start, end, Order::Ascending, &mut |k, v| {
                out.push((k.to_vec(), v.to_vec()));
                if out.len() >= limit {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })?;
        Ok(out)
    }

    pub fn into_ops(self) -> Vec<WriteOp> {
        self.pending
            .into_iter()
            .map(|((space, key), value)| match value {
                Some(value) => WriteOp::Put { space, key, value },
                None => WriteOp::Delete { space, key },
            })
            .collect()
    }
}

/// Stores reads not stored before, with their crops; answers (stored, already present).
fn store_reads(
    ws: &mut WriteSet<'_>,
    reads: Vec<Read>,
    crops: Vec<Option<Vec<u8>>>,
) -> Result<(u64, Vec<crate::domain::ReadId>), ApplyError> {
    let mut stored = 0;
    let mut already_present = Vec::new();
    for (read, crop) in reads
        .into_iter()
        .zip(crops.into_iter().chain(std::iter::repeat(None)))
    {
        if ws.get(Space::Reads, &keys::read(&read.id))?.is_some() {
            already_present.push(read.id);
            continue;
        }
        if let Some(crop) = crop {
            ws.put(Space::Images, keys::image(&read.id), crop);
        }
        store_read(ws, &read)?;
        stored += 1;
    }
    Ok((stored, already_present))
}

/// The audit chain head as stored.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct AuditHead {
    pub seq: u64,
    pub hash: [u8; 32],
}

/// Applies one command. On `Err` the caller discards this command's writes.
pub fn apply(ws: &mut WriteSet<'_>, command: Command) -> Result<Outcome, ApplyError> {
    match command {
        Command::CreateAgency(agency) => {
            let key = keys::agency(&agency.id);
            if ws.get(Space::Meta, &key)?.is_some() {
                return Err(ApplyError::Rejected(format!(
                    "agency {} already exists",
                    agency.id
                )));
            }
            ws.put_record(Space::Meta, key, &agency)?;
            Ok(Outcome::Done)
        }
        Command::CreateUser(user) => {
            let key = keys::user(&user.username);
            if ws.get(Space::Meta, &key)?.is_some() {
                return Err(ApplyError::Rejected(format!(
                    "user {} already exists",
                    user.username
                )));
            }
            if ws
                .get(Space::Meta, &keys::agency(&user.agency_id))?
                .is_none()
            {
                return Err(ApplyError::Rejected(format!(
                    "agency {} does not exist",
                    user.agency_id
                )));
            }
            ws.put_record(Space::Meta, key, &user)?;
            Ok(Outcome::Done)
        }
        Command::RegisterCamera(camera) => {
            let key = keys::camera(&camera.id);
            if ws.get(Space::Meta, &key)?.is_some() {
                return Err(ApplyError::Rejected(format!(
                    "camera {} already exists",
                    camera.id
                )));
            }
            let agency: Option<crate::domain::Agency> =
                ws.get_record(Space::Meta, &keys::agency(&camera.agency_id))?;
            match agency {
                None => {
                    return Err(ApplyError::Rejected(format!(
                        "agency {} does not exist",
                        camera.agency_id
                    )));
                }
                Some(a) if !a.contributing => {
                    return Err(ApplyError::Rejected(format!(
                        "agency {} is not a contributing agency and cannot register cameras",
                        a.id
                    )));
                }
                Some(_) => {}
            }
            ws.put_record(Space::Meta, key, &camera)?;
            Ok(Outcome::Done)
        }
        Command::SetPassword {
            username,
            password_hash,
            keep_session,
        } => {
            close_sessions_of(ws, &username, keep_session)?;
            update_user(ws, &username, |user| {
                user.password_hash = password_hash;
                user.must_change_password = false;
                user.failed_logins = 0;
                user.locked_until = None;
            })
        }
        Command::RecordLoginFailure {
            username,
            at,
            lock_after,
            lock_for_ms,
        } => {
            let outcome = update_user(ws, &username, |user| {
                user.failed_logins += 1;
                if user.failed_logins >= lock_after {
                    user.locked_until = Some(at + lock_for_ms);
                    user.failed_logins = 0;
                }
            })?;
            if let Outcome::User(user) = &outcome
                && user.locked_until == Some(at + lock_for_ms)
            {
                close_sessions_of(ws, &username, None)?;
            }
            Ok(outcome)
        }
        Command::RecordLoginSuccess {
            username,
            totp_step,
            session,
            idle_ms,
        } => {
            let user: User = ws
                .get_record(Space::Meta, &keys::user(&username))?
                .ok_or_else(|| ApplyError::Rejected(format!("user {username} does not exist")))?;
            if let Some(step) = totp_step {
                match &user.totp {
                    Some(t) if t.confirmed && step > t.last_step => {}
                    Some(t) if t.confirmed => {
                        return Err(ApplyError::Rejected(
                            "this one-time code was already used; wait for the next one".into(),
                        ));
                    }
                    _ => {
                        return Err(ApplyError::Rejected(
                            "the account has no confirmed second factor".into(),
                        ));
                    }
                }
            }
            if !user.enabled {
                return Err(ApplyError::Rejected("the account is disabled".into()));
            }
            let mut hashes: Vec<[u8; 32]> = ws
                .get_record(Space::Meta, &keys::user_sessions(&username))?
                .unwrap_or_default();
            let mut live = Vec::with_capacity(hashes.len() + 1);
            for hash in hashes.drain(..) {
                let key = keys::session(&hash);
                match ws.get_record::<SessionRecord>(Space::Meta, &key)? {
                    Some(s) if !s.idle_expired(session.opened_at, idle_ms) => live.push(hash),
                    _ => ws.delete(Space::Meta, key),
                }
            }
            live.push(session.token_hash);
            ws.put_record(Space::Meta, keys::user_sessions(&username), &live)?;
            ws.put_record(Space::Meta, keys::session(&session.token_hash), &session)?;
            update_user(ws, &username, |user| {
                user.failed_logins = 0;
                user.locked_until = None;
                if let (Some(step), Some(t)) = (totp_step, user.totp.as_mut()) {
                    t.last_step = step;
                }
            })
        }
        Command::TouchSession { token_hash, at } => {
            let key = keys::session(&token_hash);
            if let Some(mut session) = ws.get_record::<SessionRecord>(Space::Meta, &key)? {
                session.last_seen = session.last_seen.max(at);
                ws.put_record(Space::Meta, key, &session)?;
            }
            Ok(Outcome::Done)
        }
        Command::CloseSession { token_hash } => {
            let key = keys::session(&token_hash);
            if let Some(session) = ws.get_record::<SessionRecord>(Space::Meta, &key)? {
                ws.delete(Space::Meta, key);
                let list_key = keys::user_sessions(&session.username);
                let mut hashes: Vec<[u8; 32]> =
                    ws.get_record(Space::Meta, &list_key)?.unwrap_or_default();
                hashes.retain(|h| *h != token_hash);
                ws.put_record(Space::Meta, list_key, &hashes)?;
            }
            Ok(Outcome::Done)
        }
        Command::UpdateAccount { username, change } => {
            let user: User = ws
                .get_record(Space::Meta, &keys::user(&username))?
                .ok_or_else(|| ApplyError::Rejected(format!("user {username} does not exist")))?;
            if user.is_revoked() && !matches!(change, AccountChange::Designate { .. }) {
                return Err(ApplyError::Rejected(format!(
                    "the access of {username} was revoked; a revoked account cannot be changed"
                )));
            }
            if matches!(
                change,
                AccountChange::Disable { .. }
                    | AccountChange::Revoke { .. }
                    | AccountChange::ResetTotp
            ) {
                close_sessions_of(ws, &username, None)?;
            }
            update_user(ws, &username, |user| match change {
                AccountChange::Disable { reason, by, at } => {
                    user.enabled = false;
                    user.hold = Some(AccountHold::Disabled { reason, by, at });
                }
                AccountChange::Enable => {
                    user.enabled = true;
                    user.hold = None;
                    user.failed_logins = 0;
                    user.locked_until = None;
                }
                AccountChange::Revoke { reason, by, at } => {
                    user.enabled = false;
                    user.hold = Some(AccountHold::Revoked { reason, by, at });
                }
                AccountChange::Designate {
                    designation,
                    trained_on,
                } => {
                    user.designation = designation;
                    user.trained_on = trained_on;
                }
                AccountChange::ResetTotp => user.totp = None,
            })
        }
        Command::EnrollTotp {
            username,
            secret_base32,
        } => update_user(ws, &username, |user| {
            user.totp = Some(TotpEnrolment {
                secret_base32,
                confirmed: false,
                last_step: 0,
            })
        }),
        Command::ConfirmTotp { username, step } => {
            let user: User = ws
                .get_record(Space::Meta, &keys::user(&username))?
                .ok_or_else(|| ApplyError::Rejected(format!("user {username} does not exist")))?;
            if user.totp.is_none() {
                return Err(ApplyError::Rejected("no TOTP enrolment to confirm".into()));
            }
            update_user(ws, &username, |user| {
                if let Some(t) = user.totp.as_mut() {
                    t.confirmed = true;
                    t.last_step = step;
                }
            })
        }
        Command::UpdateAgency { agency_id, change } => {
            let key = keys::agency(&agency_id);
            let mut agency: Agency = ws.get_record(Space::Meta, &key)?.ok_or_else(|| {
                ApplyError::Rejected(format!("agency {agency_id} does not exist"))
            })?;
            match change {
                AgencyChange::Contributing(c) => agency.contributing = c,
                AgencyChange::Contact(c) => agency.contact = c,
                AgencyChange::CaseNumberFormat(f) => agency.case_number_format = f,
                AgencyChange::IngestFilters(f) => agency.ingest_filters = f,
                AgencyChange::RetentionDays(d) => agency.retention_days = d,
            }
            ws.put_record(Space::Meta, key, &agency)?;
            Ok(Outcome::Done)
        }
        Command::AcceptTerms {
            username,
            version,
            at,
        } => {
            if ws.get(Space::Meta, &keys::terms(version))?.is_none() {
                return Err(ApplyError::Rejected(format!(
                    "terms version {version} does not exist"
                )));
            }
            ws.put_record(Space::Meta, keys::terms_acceptance(version, &username), &at)?;
            update_user(ws, &username, |user| {
                user.accepted_terms = Some((version, at))
            })
        }
        Command::PublishTerms { version, text, at } => {
            let key = keys::terms(version);
            if ws.get(Space::Meta, &key)?.is_some() {
                return Err(ApplyError::Rejected(format!(
                    "terms version {version} already published"
                )));
            }
            ws.put_record(Space::Meta, key, &(text, at))?;
            Ok(Outcome::Done)
        }
        Command::IngestFrame {
            camera_id,
            seq,
            reads,
            crops,
            elsewhere,
        } => {
            let frame_key = keys::frame(&camera_id, seq);
            if let Some(stored) = ws.get_record::<Vec<FrameRead>>(Space::Frames, &frame_key)? {
                return Ok(Outcome::FrameStored {
                    reads: stored,
                    duplicate: true,
                });
            }
            let mut frame_reads: Vec<FrameRead> = reads.iter().map(FrameRead::of).collect();
            frame_reads.extend(elsewhere);
            store_reads(ws, reads, crops)?;
            ws.put_record(Space::Frames, frame_key, &frame_reads)?;
            Ok(Outcome::FrameStored {
                reads: frame_reads,
                duplicate: false,
            })
        }
        Command::StoreReads { reads, crops } => {
            let (stored, already_present) = store_reads(ws, reads, crops)?;
            Ok(Outcome::Imported {
                stored,
                already_present,
            })
        }
        Command::DeleteRead { id } => {
            let Some(read) = ws.get_record::<Read>(Space::Reads, &keys::read(&id))? else {
                return Err(ApplyError::Rejected(format!(
                    "read {} is not stored",
                    id.to_hex()
                )));
            };
            if !ws
                .keys_with_prefix(Space::Meta, &keys::held_prefix(&id))?
                .is_empty()
            {
                return Err(ApplyError::Rejected(format!(
                    "read {} is under a legal hold",
                    id.to_hex()
                )));
            }
            remove_read(ws, &read);
            ws.delete(Space::Images, keys::image(&id));
            Ok(Outcome::Done)
        }
        Command::PutCorrectedRead {
            read,
            crop,
            correction,
        } => {
            if let Some(crop) = crop {
                ws.put(Space::Images, keys::image(&read.id), crop);
            }
            if let Some(stored) = ws.get_record::<Read>(Space::Reads, &keys::read(&read.id))? {
                remove_read(ws, &stored);
            }
            ws.put_record(
                Space::Meta,
                keys::read_correction(&read.id, correction.at),
                &correction,
            )?;
            store_read(ws, &read)?;
            Ok(Outcome::Done)
        }
        Command::PutHotlist(list) => {
            let key = keys::hotlist(&list.id);
            let mut list = *list;
            if let Some(old) = ws.get_record::<crate::hotlist::Hotlist>(Space::Meta, &key)? {
                list.entries = old.entries;
            }
            ws.put_record(Space::Meta, key, &list)?;
            Ok(Outcome::Done)
        }
        Command::HotlistEntries {
            list_id,
            clear_first,
            add,
            remove,
            at,
        } => {
            let list_key = keys::hotlist(&list_id);
            let mut list: crate::hotlist::Hotlist =
                ws.get_record(Space::Meta, &list_key)?.ok_or_else(|| {
                    ApplyError::Rejected(format!("hot list {list_id} does not exist"))
                })?;
            let mut doomed: Vec<(String, Option<String>)> = remove;
            if clear_first {
                let prefix = keys::hotlist_members_prefix(&list_id);
                for key in ws.keys_with_prefix(Space::Meta, &prefix)? {
                    let rest = &key[prefix.len()..];
                    let mut parts = rest.split(|b| *b == 0);
                    let plate =
                        String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
                    let state = parts
                        .next()
                        .filter(|s| !s.is_empty())
                        .map(|s| String::from_utf8_lossy(s).into_owned());
                    doomed.push((plate, state));
                }
            }
            for (plate, state) in doomed {
                let member = keys::hotlist_member(&list_id, &plate, state.as_deref());
                if ws.get(Space::Meta, &member)?.is_some() {
                    ws.delete(Space::Meta, member);
                    ws.delete(
                        Space::Meta,
                        keys::hotlist_entry(&plate, &list_id, state.as_deref()),
                    );
                    ws.delete(
                        Space::Meta,
                        keys::hotlist_fold(
                            &crate::hotlist::fold(&plate),
                            &plate,
                            &list_id,
                            state.as_deref(),
                        ),
                    );
                    list.entries = list.entries.saturating_sub(1);
                }
            }
            for entry in add {
                let state = entry.plate_state.as_deref();
                let member = keys::hotlist_member(&list_id, &entry.plate, state);
                if ws.get(Space::Meta, &member)?.is_none() {
                    list.entries += 1;
                }
                ws.put(Space::Meta, member, Vec::new());
                let value = codec::encode(&(list_id.clone(), entry.clone()))?;
                ws.put(
                    Space::Meta,
                    keys::hotlist_entry(&entry.plate, &list_id, state),
                    value.clone(),
                );
                ws.put(
                    Space::Meta,
                    keys::hotlist_fold(
                        &crate::hotlist::fold(&entry.plate),
                        &entry.plate,
                        &list_id,
                        state,
                    ),
                    value,
                );
            }
            list.updated_at = at;
            ws.put_record(Space::Meta, list_key, &list)?;
            Ok(Outcome::Done)
        }
        Command::RaiseAlert(alert) => {
            let id_key = keys::alert_id(&alert.id);
            if let Some(seq) = ws.get_record::<u64>(Space::Meta, &id_key)? {
                return Ok(Outcome::Alerted { seq, new: false });
            }
            let seq = ws
                .get_record::<u64>(Space::Meta, keys::ALERT_SEQ)?
                .unwrap_or(0)
                + 1;
            ws.put_record(Space::Meta, keys::ALERT_SEQ.to_vec(), &seq)?;
            ws.put_record(Space::Meta, id_key, &seq)?;
            ws.put_record(Space::Meta, keys::alert(seq), &*alert)?;
            Ok(Outcome::Alerted { seq, new: true })
        }
        Command::ReviewAlert { alert_id, review } => {
            let seq: u64 = ws
                .get_record(Space::Meta, &keys::alert_id(&alert_id))?
                .ok_or_else(|| ApplyError::Rejected("no such alert".into()))?;
            let key = keys::alert(seq);
            let mut alert: crate::hotlist::Alert = ws
                .get_record(Space::Meta, &key)?
                .ok_or_else(|| ApplyError::Rejected("no such alert".into()))?;
            alert.reviews.push(review);
            ws.put_record(Space::Meta, key, &alert)?;
            Ok(Outcome::Done)
        }
        Command::RecordNodeTime { node_id, at } => {
            let key = keys::node_time(node_id);
            let last: Option<crate::util::Millis> = ws.get_record(Space::Meta, &key)?;
            // A node's recorded time never goes back (a restarted node with a slow clock).
            ws.put_record(Space::Meta, key, &last.map_or(at, |l| l.max(at)))?;
            Ok(Outcome::Done)
        }
        Command::PurgeReads {
            default_cutoff,
            cutoffs,
            limit,
        } => {
            let cutoff_of = |agency: &str| {
                cutoffs
                    .iter()
                    .find(|(a, _)| a == agency)
                    .map(|(_, c)| *c)
                    .unwrap_or(default_cutoff)
            };
            let latest = cutoffs
                .iter()
                .map(|(_, c)| *c)
                .chain(std::iter::once(default_cutoff))
                .max()
                .unwrap_or(default_cutoff);
            let start = keys::read_index_prefix(keys::IDX_TIME, "");
            let mut end = start.clone();
            end.extend_from_slice(&keys::time_bytes(latest));
            let mut purged = std::collections::BTreeMap::<String, u64>::new();
            let mut held_kept = 0;
            let mut removed = 0;
            let mut more = false;
            // Scan a bounded window of the time index per command.
            for (key, _) in ws.scan_committed(
                Space::ReadIndex,
                &start,
                &end,
                limit.saturating_mul(4).max(16),
            )? {
                if removed >= limit {
                    more = true;
                    break;
                }
                let Some((_, _, id)) = keys::parse_read_index(&key) else {
                    continue;
                };
                let Some(read) = ws.get_record::<Read>(Space::Reads, &keys::read(&id))? else {
                    continue;
                };
                if read.captured_at >= cutoff_of(&read.agency_id) {
                    continue;
                }
                if !ws
                    .keys_with_prefix(Space::Meta, &keys::held_prefix(&id))?
                    .is_empty()
                {
                    held_kept += 1;
                    continue;
                }
                remove_read(ws, &read);
                ws.delete(Space::Images, keys::image(&id));
                for k in ws.keys_with_prefix(Space::Meta, &keys::read_corrections_prefix(&id))? {
                    ws.delete(Space::Meta, k);
                }
                *purged.entry(read.agency_id.clone()).or_default() += 1;
                removed += 1;
            }
            if removed >= limit {
                more = true;
            }
            Ok(Outcome::Purged {
                purged,
                held_kept,
                more,
            })
        }
        Command::PurgeAlerts {
            default_cutoff,
            cutoffs,
            after,
            limit,
        } => {
            let mut held = std::collections::HashSet::new();
            let mut end = keys::HOLD_PREFIX.to_vec();
            end.push(0xff);
            for (_, value) in ws.scan_committed(Space::Meta, keys::HOLD_PREFIX, &end, usize::MAX)? {
                let hold: crate::retention::LegalHold = codec::decode(&value)?;
                if hold.released.is_none() {
                    held.extend(hold.reads);
                }
            }
            let mut end = keys::ALERT_PREFIX.to_vec();
            end.push(0xff);
            let window = ws.scan_committed(
                Space::Meta,
                &keys::alert(after.saturating_add(1)),
                &end,
                limit.max(1),
            )?;
            let next = (window.len() >= limit.max(1))
                .then(|| window.last().and_then(|(k, _)| keys::alert_seq_of(k)))
                .flatten();
            let (mut purged, mut held_kept) = (0, 0);
            for (key, value) in window {
                let alert: crate::hotlist::Alert = codec::decode(&value)?;
                let confirmed = alert
                    .reviews
                    .iter()
                    .any(|r| r.outcome == crate::hotlist::ReviewOutcome::Confirmed);
                let cutoff = if confirmed {
                    default_cutoff
                } else {
                    cutoffs
                        .iter()
                        .find(|(a, _)| *a == alert.read.agency_id)
                        .map_or(default_cutoff, |(_, c)| *c)
                };
                if alert.read.captured_at >= cutoff {
                    continue;
                }
                if held.contains(&alert.read.read_id) {
                    held_kept += 1;
                    continue;
                }
                ws.delete(Space::Meta, key);
                ws.delete(Space::Meta, keys::alert_id(&alert.id));
                purged += 1;
            }
            Ok(Outcome::AlertsPurged {
                purged,
                held_kept,
                next,
            })
        }
        Command::MarkHeld {
            hold_id,
            reads,
            held,
        } => {
            for id in reads {
                let key = keys::held(&id, &hold_id);
                if held {
                    ws.put(Space::Meta, key, Vec::new());
                } else {
                    ws.delete(Space::Meta, key);
                }
            }
            Ok(Outcome::Done)
        }
        Command::PutHold(hold) => {
            ws.put_record(Space::Meta, keys::hold(&hold.id), &*hold)?;
            Ok(Outcome::Done)
        }
        Command::RecordPurge(run) => {
            ws.put_record(Space::Meta, keys::LAST_PURGE.to_vec(), &*run)?;
            Ok(Outcome::Done)
        }
        Command::AddNotice(notice) => {
            let mut n = 0;
            while ws
                .get(Space::Meta, &keys::notice(&notice.agency_id, notice.at, n))?
                .is_some()
            {
                n += 1;
            }
            ws.put_record(
                Space::Meta,
                keys::notice(&notice.agency_id, notice.at, n),
                &notice,
            )?;
            Ok(Outcome::Done)
        }
        Command::SetClusterLayout(layout) => {
            ws.put_record(Space::Meta, keys::CLUSTER_LAYOUT.to_vec(), &layout)?;
            Ok(Outcome::Done)
        }
        Command::ImportReads { reads } => {
            let (stored, already_present) = store_reads(ws, reads, Vec::new())?;
            Ok(Outcome::Imported {
                stored,
                already_present,
            })
        }
        Command::AppendAudit(draft) => {
            let head: Option<AuditHead> = ws.get_record(Space::Meta, keys::AUDIT_HEAD)?;
            let (seq, prev) = match head {
                Some(h) => (h.seq + 1, h.hash),
                None => (1, [0u8; 32]),
            };
            let entry = draft.seal(seq, prev);
            for key in audit_index_keys(&entry) {
                ws.put(Space::AuditIndex, key, Vec::new());
            }
            ws.put_record(Space::Audit, keys::audit(seq), &entry)?;
            ws.put_record(
                Space::Meta,
                keys::AUDIT_HEAD.to_vec(),
                &AuditHead {
                    seq,
                    hash: entry.hash,
                },
            )?;
            Ok(Outcome::Audited {
                seq,
                hash: entry.hash,
            })
        }
        Command::RecordAuditCheckpoint(checkpoint) => {
            if !checkpoint.signature_valid() {
                return Err(ApplyError::Rejected(format!(
                    "audit checkpoint of node {} at entry {} has an invalid signature",
                    checkpoint.node_id, checkpoint.seq
                )));
            }
            ws.put_record(
                Space::AuditIndex,
                keys::audit_checkpoint(checkpoint.seq, checkpoint.node_id),
                &checkpoint,
            )?;
            Ok(Outcome::Done)
        }
    }
}

/// The index keys of an audit entry: case, user, agency, the source agencies of its results,
/// refusal, time.
fn audit_index_keys(entry: &crate::domain::AuditEntry) -> Vec<Vec<u8>> {
    let seq = entry.seq;
    let mut index = vec![
        keys::audit_index(keys::AUDIT_BY_USER, &entry.username, seq),
        keys::audit_index(keys::AUDIT_BY_AGENCY, &entry.agency_id, seq),
        keys::audit_by_time(entry.at, seq),
    ];
    if let Some(case) = &entry.case_number {
        index.push(keys::audit_index(keys::AUDIT_BY_CASE, case, seq));
    }
    if entry.outcome == crate::domain::AuditOutcome::Refused {
        index.push(keys::audit_index(keys::AUDIT_REFUSED, "", seq));
    }
    let sources: std::collections::BTreeSet<&str> =
        entry.results.iter().map(|r| r.agency_id.as_str()).collect();
    for agency in sources {
        index.push(keys::audit_index(keys::AUDIT_BY_DATA_AGENCY, agency, seq));
    }
    index
}

fn update_user(
    ws: &mut WriteSet<'_>,
    username: &str,
    change: impl FnOnce(&mut User),
) -> Result<Outcome, ApplyError> {
    let key = keys::user(username);
    let mut user: User = ws
        .get_record(Space::Meta, &key)?
        .ok_or_else(|| ApplyError::Rejected(format!("user {username} does not exist")))?;
    change(&mut user);
    ws.put_record(Space::Meta, key, &user)?;
    Ok(Outcome::User(Box::new(user)))
}

/// Ends a user's sessions (all, or all but `keep`).
fn close_sessions_of(
    ws: &mut WriteSet<'_>,
    username: &str,
    keep: Option<[u8; 32]>,
) -> Result<(), ApplyError> {
    let list_key = keys::user_sessions(username);
    let hashes: Vec<[u8; 32]> = ws.get_record(Space::Meta, &list_key)?.unwrap_or_default();
    let mut kept = Vec::new();
    for hash in hashes {
        if Some(hash) == keep {
            kept.push(hash);
        } else {
            ws.delete(Space::Meta, keys::session(&hash));
        }
    }
    ws.put_record(Space::Meta, list_key, &kept)?;
    Ok(())
}

/// The index entries of a read, as [`store_read`] writes them: plate, time, camera, agency,
/// and one per distinct alternate plate text.
fn read_index_keys(read: &Read) -> Vec<Vec<u8>> {
    let at = read.captured_at;
    let mut index = vec![
        keys::read_index(keys::IDX_PLATE, &read.plate, at, &read.id),
        keys::read_index(keys::IDX_TIME, "", at, &read.id),
        keys::read_index(keys::IDX_CAMERA, &read.camera_id, at, &read.id),
        keys::read_index(keys::IDX_AGENCY, &read.agency_id, at, &read.id),
    ];
    let mut alternates: Vec<&str> = read
        .alternates
        .iter()
        .map(|a| a.plate.as_str())
        .filter(|p| *p != read.plate && !p.is_empty())
        .collect();
    alternates.sort_unstable();
    alternates.dedup();
    for plate in alternates {
        index.push(keys::read_index(keys::IDX_ALTERNATE, plate, at, &read.id));
    }
    index
}

/// Removes a read and its index entries (not its image or correction history).
fn remove_read(ws: &mut WriteSet<'_>, read: &Read) {
    ws.delete(Space::Reads, keys::read(&read.id));
    for key in read_index_keys(read) {
        ws.delete(Space::ReadIndex, key);
    }
}

/// Writes a read and its index entries.
fn store_read(ws: &mut WriteSet<'_>, read: &Read) -> Result<(), StorageError> {
    ws.put_record(Space::Reads, keys::read(&read.id), read)?;
    for key in read_index_keys(read) {
        ws.put(Space::ReadIndex, key, Vec::new());
    }
    Ok(())
}

/// Counts the entries in a key range; used by tests and status pages.
pub fn count_range(
    storage: &dyn Storage,
    space: Space,
    start: &[u8],
    end: &[u8],
) -> Result<u64, StorageError> {
    let mut n = 0u64;
    storage.scan(space, start, end, Order::Ascending, &mut |_, _| {
        n += 1;
        ControlFlow::Continue(())
    })?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::AuditDraft;
    use crate::domain::{AuditAction, AuditOutcome, PlatePattern, ReadId, ReadSource};
    use crate::state::queries::{self, ReadQuery};
    use crate::storage::memory::MemoryStorage;

    fn read(camera: &str, seq: u64, plate: &str, at: i64) -> Read {
        Read {
            id: ReadId::for_frame(camera, seq, 0),
            plate: plate.into(),
            plate_state: None,
            captured_at: at,
            agency_id: "A".into(),
            camera_id: camera.into(),
            position: None,
            heading_degrees: None,
            place: None,
            confidence: 0.9,
            char_confidences: vec![],
            alternates: vec![],
            plate_box: None,
            has_crop: false,
            source: ReadSource::EdgeRead { seq },
            stored_at: at,
        }
    }

    fn alert(seq: u64, agency: &str, captured_at: i64, confirmed: bool) -> Command {
        use crate::hotlist::{Alert, AlertRead, AlertReview, ListScope, MatchKind, ReviewOutcome};
        let read_id = ReadId::for_frame("c1", seq, 0);
        Command::RaiseAlert(Box::new(Alert {
            id: Alert::id_for(&read_id, "stolen"),
            raised_at: captured_at,
            read: AlertRead {
                read_id,
                plate: format!("P{seq}"),
                plate_state: None,
                captured_at,
                camera_id: "c1".into(),
                agency_id: agency.into(),
                position: None,
                confidence: 0.9,
                has_crop: false,
            },
            list_id: "stolen".into(),
            list_name: "Stolen".into(),
            priority: 1,
            scope: ListScope::Statewide,
            entry: crate::hotlist::parse::ListEntry {
                plate: format!("P{seq}"),
                ..Default::default()
            },
            matched: MatchKind::Exact,
            historical: false,
            reviews: confirmed
                .then(|| AlertReview {
                    outcome: ReviewOutcome::Confirmed,
                    by: "officer".into(),
                    agency_id: agency.into(),
                    note: "stopped, driver arrested".into(),
                    at: captured_at,
                })
                .into_iter()
                .collect(),
        }))
    }

    #[test]
    fn old_alerts_are_purged_unless_held_and_a_confirmed_one_keeps_the_full_year() {
        let storage = MemoryStorage::new();
        // seq 1: old, unreviewed -> purged; 2: old but its read is held -> kept; 3: young -> kept;
        // 4: SHORT agency, past its 30 days but within the year, unconfirmed -> purged;
        // 5: the same, confirmed -> kept (alert data of an enforcement action keeps a year).
        let (year_cutoff, short_cutoff) = (10_000, 50_000);
        for (seq, agency, at, confirmed) in [
            (1, "A", 5_000, false),
            (2, "A", 6_000, false),
            (3, "A", 60_000, false),
            (4, "SHORT", 20_000, false),
            (5, "SHORT", 20_000, true),
        ] {
            commit(&storage, alert(seq, agency, at, confirmed)).unwrap();
        }
        let hold = crate::retention::LegalHold {
            id: "h1".into(),
            case_number: "C-1".into(),
            kind: crate::retention::HoldKind::Evidence,
            reads: vec![ReadId::for_frame("c1", 2, 0)],
            query: None,
            placed_by: "chief".into(),
            agency_id: "A".into(),
            placed_at: 0,
            expected_disposition: None,
            released: None,
        };
        commit(&storage, Command::PutHold(Box::new(hold.clone()))).unwrap();
        let purge = |after: u64, limit: usize| Command::PurgeAlerts {
            default_cutoff: year_cutoff,
            cutoffs: vec![("SHORT".into(), short_cutoff)],
            after,
            limit,
        };
        // Two alerts at a time: the cursor goes on where the last command stopped.
        let mut after = 0;
        let (mut purged, mut held) = (0, 0);
        loop {
            let Outcome::AlertsPurged {
                purged: p,
                held_kept: h,
                next,
            } = commit(&storage, purge(after, 2)).unwrap()
            else {
                panic!("not an alert purge outcome");
            };
            purged += p;
            held += h;
            match next {
                Some(seq) => after = seq,
                None => break,
            }
        }
        assert_eq!((purged, held), (2, 1));
        let left: Vec<u64> = crate::hotlist::alerts_after(&storage, 0, 100)
            .unwrap()
            .into_iter()
            .map(|(seq, _)| seq)
            .collect();
        assert_eq!(left, vec![2, 3, 5]);
        // A purged alert is raised again if its read matches again (its id index went too).
        assert!(matches!(
            commit(&storage, alert(1, "A", 5_000, false)).unwrap(),
            Outcome::Alerted { new: true, .. }
        ));

        // Released with a disposition: the held alert goes at the next purge.
        let released = crate::retention::LegalHold {
            released: Some(crate::retention::HoldRelease {
                by: "chief".into(),
                agency_id: "A".into(),
                at: 1,
                disposition: "case closed".into(),
            }),
            ..hold
        };
        commit(&storage, Command::PutHold(Box::new(released))).unwrap();
        let Outcome::AlertsPurged { purged, .. } = commit(&storage, purge(0, 100)).unwrap() else {
            panic!("not an alert purge outcome");
        };
        assert_eq!(purged, 2, "the released one and the re-raised old one");
    }

    fn commit(storage: &MemoryStorage, command: Command) -> Result<Outcome, ApplyError> {
        let mut ws = WriteSet::new(storage);
        let outcome = apply(&mut ws, command)?;
        storage.write(ws.into_ops(), true)?;
        Ok(outcome)
    }

    fn frame(camera: &str, seq: u64, plate: &str, at: i64) -> Command {
        Command::IngestFrame {
            camera_id: camera.into(),
            seq,
            reads: vec![read(camera, seq, plate, at)],
            crops: vec![None],
            elsewhere: vec![],
        }
    }

    #[test]
    fn a_resent_frame_is_stored_once_even_within_one_batch() {
        let storage = MemoryStorage::new();
        let mut ws = WriteSet::new(&storage);
        let first = apply(&mut ws, frame("c1", 1, "ABC123", 1000)).unwrap();
        let again = apply(&mut ws, frame("c1", 1, "ABC123", 1000)).unwrap();
        storage.write(ws.into_ops(), true).unwrap();
        assert!(matches!(
            first,
            Outcome::FrameStored {
                duplicate: false,
                ..
            }
        ));
        assert!(matches!(
            again,
            Outcome::FrameStored {
                duplicate: true,
                ..
            }
        ));
        let third = commit(&storage, frame("c1", 1, "ABC123", 1000)).unwrap();
        assert!(matches!(
            third,
            Outcome::FrameStored {
                duplicate: true,
                ..
            }
        ));
        let q = ReadQuery {
            plate: Some(PlatePattern::Exact("ABC123".into())),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(queries::search_reads(&storage, &q).unwrap().reads.len(), 1);
    }

    #[test]
    fn searches_use_each_index_and_return_newest_first() {
        let storage = MemoryStorage::new();
        commit(&storage, frame("c1", 1, "ABC123", 1000)).unwrap();
        commit(&storage, frame("c1", 2, "ABD999", 2000)).unwrap();
        commit(&storage, frame("c2", 3, "ABC123", 3000)).unwrap();
        commit(&storage, frame("c2", 4, "XYZ000", 4000)).unwrap();
        let search = |q: ReadQuery| -> Vec<i64> {
            queries::search_reads(&storage, &ReadQuery { limit: 100, ..q })
                .unwrap()
                .reads
                .iter()
                .map(|r| r.captured_at)
                .collect()
        };
        assert_eq!(
            search(ReadQuery {
                plate: Some(PlatePattern::Exact("ABC123".into())),
                ..Default::default()
            }),
            vec![3000, 1000]
        );
        assert_eq!(
            search(ReadQuery {
                plate: PlatePattern::parse("AB*").ok(),
                ..Default::default()
            }),
            vec![3000, 2000, 1000]
        );
        assert_eq!(
            search(ReadQuery {
                plate: PlatePattern::parse("*000").ok(),
                ..Default::default()
            }),
            vec![4000]
        );
        assert_eq!(
            search(ReadQuery {
                camera_id: Some("c2".into()),
                ..Default::default()
            }),
            vec![4000, 3000]
        );
        assert_eq!(
            search(ReadQuery {
                from: Some(1500),
                to: Some(3500),
                ..Default::default()
            }),
            vec![3000, 2000]
        );
        assert_eq!(
            search(ReadQuery {
                plate: Some(PlatePattern::Exact("ABC123".into())),
                from: Some(2000),
                ..Default::default()
            }),
            vec![3000]
        );
        let limited = queries::search_reads(
            &storage,
            &ReadQuery {
                agency_id: Some("A".into()),
                limit: 2,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(limited.reads.len(), 2);
        assert!(limited.truncated);
    }

    #[test]
    fn audit_listings_use_each_index_and_filter_the_rest() {
        use crate::domain::audit::AuditedResult;
        use crate::state::queries::{AuditFilter, audit_search};
        let storage = MemoryStorage::new();
        /// (user, agency, case, outcome, sources of the results)
        type Logged<'a> = (
            &'a str,
            &'a str,
            Option<&'a str>,
            AuditOutcome,
            &'a [&'a str],
        );
        let log: [Logged; 6] = [
            ("ann", "A", Some("C-1"), AuditOutcome::Allowed, &["B", "A"]),
            ("ann", "A", Some("C-2"), AuditOutcome::Allowed, &["A"]),
            ("bob", "B", Some("C-1"), AuditOutcome::Allowed, &["B"]),
            ("bob", "B", None, AuditOutcome::Refused, &[]),
            ("cy", "C", Some("C-3"), AuditOutcome::Allowed, &["B"]),
            ("ann", "A", None, AuditOutcome::Refused, &[]),
        ];
        for (i, (user, agency, case, outcome, sources)) in log.iter().enumerate() {
            commit(
                &storage,
                Command::AppendAudit(AuditDraft {
                    at: 1000 * i as i64,
                    username: user.to_string(),
                    agency_id: agency.to_string(),
                    action: AuditAction::Search,
                    parameters: String::new(),
                    case_number: case.map(str::to_string),
                    justification: None,
                    outcome: outcome.clone(),
                    detail: String::new(),
                    result_count: sources.len() as u64,
                    result_digest: String::new(),
                    results: sources
                        .iter()
                        .map(|a| AuditedResult {
                            read_id: crate::domain::ReadId([i as u8; 16]),
                            agency_id: a.to_string(),
                        })
                        .collect(),
                }),
            )
            .unwrap();
        }
        let seqs = |filter: AuditFilter| -> Vec<u64> {
            let filter = AuditFilter {
                limit: 100,
                ..filter
            };
            audit_search(&storage, &filter)
                .unwrap()
                .entries
                .iter()
                .map(|e| e.seq)
                .collect()
        };
        let case = |c: &str| Some(c.to_string());
        assert_eq!(
            seqs(AuditFilter {
                case_number: case("C-1"),
                ..Default::default()
            }),
            vec![3, 1],
            "newest first"
        );
        assert_eq!(
            seqs(AuditFilter {
                case_number: case("C-1"),
                oldest_first: true,
                ..Default::default()
            }),
            vec![1, 3]
        );
        assert_eq!(
            seqs(AuditFilter {
                username: case("ann"),
                outcome: Some(AuditOutcome::Refused),
                ..Default::default()
            }),
            vec![6]
        );
        assert_eq!(
            seqs(AuditFilter {
                data_agency: case("B"),
                ..Default::default()
            }),
            vec![5, 3, 1],
            "who searched agency B's data"
        );
        assert_eq!(
            seqs(AuditFilter {
                data_agency: case("B"),
                agency_id: case("C"),
                ..Default::default()
            }),
            vec![5]
        );
        assert_eq!(
            seqs(AuditFilter {
                outcome: Some(AuditOutcome::Refused),
                ..Default::default()
            }),
            vec![6, 4]
        );
        assert_eq!(
            seqs(AuditFilter {
                from: Some(1000),
                to: Some(3000),
                ..Default::default()
            }),
            vec![4, 3, 2]
        );
        let page = audit_search(
            &storage,
            &AuditFilter {
                limit: 2,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(page.entries.len(), 2);
        assert!(page.truncated);
    }

    #[test]
    fn the_audit_chain_verifies_and_an_altered_entry_is_detected() {
        let storage = MemoryStorage::new();
        for i in 0..5 {
            commit(
                &storage,
                Command::AppendAudit(AuditDraft {
                    at: i,
                    username: "u".into(),
                    agency_id: "A".into(),
                    action: AuditAction::Search,
                    parameters: format!("{{\"n\":{i}}}"),
                    case_number: Some("C-1".into()),
                    justification: None,
                    outcome: AuditOutcome::Allowed,
                    detail: String::new(),
                    result_count: i as u64,
                    result_digest: String::new(),
                    results: Vec::new(),
                }),
            )
            .unwrap();
        }
        let intact = queries::check_audit_chain(&storage, 0, [0; 32]).unwrap();
        assert_eq!((intact.intact_through, intact.broken), (5, None));
        assert_eq!(
            queries::audit_head(&storage).unwrap(),
            Some((5, intact.head))
        );
        let mut entry: crate::domain::AuditEntry =
            codec::decode(&storage.get(Space::Audit, &keys::audit(3)).unwrap().unwrap()).unwrap();
        entry.result_count = 999;
        storage
            .write(
                vec![WriteOp::Put {
                    space: Space::Audit,
                    key: keys::audit(3),
                    value: codec::encode(&entry).unwrap(),
                }],
                true,
            )
            .unwrap();
        let check = queries::check_audit_chain(&storage, 0, [0; 32]).unwrap();
        assert_eq!(check.intact_through, 2);
        let (seq, why) = check.broken.expect("the altered entry is found");
        assert_eq!(seq, 3);
        assert!(why.contains("was altered"), "{why}");
        // Rewriting the entry's own hash too breaks the link of the next one.
        entry.hash = entry.compute_hash();
        storage
            .write(
                vec![WriteOp::Put {
                    space: Space::Audit,
                    key: keys::audit(3),
                    value: codec::encode(&entry).unwrap(),
                }],
                true,
            )
            .unwrap();
        let check = queries::check_audit_chain(&storage, 0, [0; 32]).unwrap();
        assert_eq!(check.broken.map(|(seq, _)| seq), Some(4));
    }

    #[test]
    fn rules_of_the_state_reject_without_changing_anything() {
        let storage = MemoryStorage::new();
        let user = User::new(
            "u",
            "NOPE",
            crate::domain::Role::AuthorizedUser,
            String::new(),
            "t",
            0,
        );
        assert!(matches!(
            commit(&storage, Command::CreateUser(user)),
            Err(ApplyError::Rejected(_))
        ));
        assert!(queries::users(&storage).unwrap().is_empty());
        let lock = Command::RecordLoginFailure {
            username: "ghost".into(),
            at: 0,
            lock_after: 5,
            lock_for_ms: 1,
        };
        assert!(matches!(
            commit(&storage, lock),
            Err(ApplyError::Rejected(_))
        ));
    }
}
