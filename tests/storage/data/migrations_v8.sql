-- The schema statements of migrations m0001 to m0008 as released (before they were
-- written with sqlite-utils): reference data for test_migrations.py. Never edit.

-- migration: m0001_foundation
CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
CREATE TABLE accounts (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            appid TEXT NOT NULL,
            secret_enc BLOB NOT NULL,
            token_enc BLOB NOT NULL,
            aes_key_enc BLOB,
            original_id TEXT NOT NULL,
            type TEXT NOT NULL,
            mode TEXT NOT NULL,
            token_mode TEXT NOT NULL DEFAULT 'stable',
            welcome TEXT,
            default_reply TEXT,
            settings TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
CREATE TABLE orgs (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            parent_id INTEGER REFERENCES orgs(id),
            created_at TEXT NOT NULL
        );
CREATE TABLE operators (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL,
            org_id INTEGER REFERENCES orgs(id),
            accounts TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            operator TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            params TEXT NOT NULL,
            outcome TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
CREATE INDEX audit_at ON audit(at);

-- migration: m0002_wechat
CREATE TABLE tokens (
            appid TEXT PRIMARY KEY,
            token_enc BLOB,
            expires_at REAL,
            fetched_at REAL,
            lease_holder TEXT,
            lease_until REAL
        );
CREATE TABLE api_calls (
            appid TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            bucket TEXT NOT NULL,
            outcome TEXT NOT NULL,
            errcode INTEGER NOT NULL DEFAULT 0,
            calls INTEGER NOT NULL,
            total_ms REAL NOT NULL,
            max_ms REAL NOT NULL,
            PRIMARY KEY (appid, endpoint, bucket, outcome, errcode)
        );

-- migration: m0003_engine
CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            account TEXT NOT NULL,
            openid TEXT NOT NULL,
            direction TEXT NOT NULL,
            msg_type TEXT NOT NULL,
            event TEXT NOT NULL DEFAULT '',
            content TEXT NOT NULL DEFAULT '',
            msg_id TEXT NOT NULL DEFAULT '',
            dedup_key TEXT,
            state TEXT NOT NULL DEFAULT 'done',
            reply BLOB,
            route TEXT NOT NULL DEFAULT '',
            outcome TEXT NOT NULL DEFAULT '',
            handling_ms REAL,
            deliveries INTEGER NOT NULL DEFAULT 1,
            in_reply_to INTEGER,
            at TEXT NOT NULL,
            claimed_at REAL
        );
CREATE UNIQUE INDEX messages_dedup ON messages(account, dedup_key);
CREATE INDEX messages_at ON messages(account, at);
CREATE INDEX messages_openid ON messages(account, openid, at);
CREATE TABLE keyword_rules (
            id INTEGER PRIMARY KEY,
            account TEXT NOT NULL,
            pattern TEXT NOT NULL,
            match TEXT NOT NULL,
            priority INTEGER NOT NULL DEFAULT 0,
            reply_kind TEXT,
            reply TEXT,
            action TEXT,
            arg TEXT,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
CREATE INDEX keyword_rules_account ON keyword_rules(account);
CREATE TABLE follower_state (
            account TEXT NOT NULL,
            openid TEXT NOT NULL,
            subscribed INTEGER,
            subscribe_at TEXT,
            unsubscribe_at TEXT,
            scene TEXT,
            latitude REAL,
            longitude REAL,
            location_at TEXT,
            last_message_at TEXT,
            PRIMARY KEY (account, openid)
        );

-- migration: m0004_outbox
CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            account TEXT NOT NULL,
            kind TEXT NOT NULL,
            lane TEXT NOT NULL,
            lane_rank INTEGER NOT NULL,
            openid TEXT,
            payload TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            source TEXT,
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            first_attempt_at REAL,
            claimed_by TEXT,
            wechat_msgid TEXT,
            delivery_status TEXT,
            last_error TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (account, idempotency_key)
        );
CREATE INDEX outbox_due ON outbox(state, lane_rank, next_attempt_at);
CREATE INDEX outbox_source ON outbox(source, state);
CREATE INDEX outbox_msgid ON outbox(account, wechat_msgid);
CREATE TABLE outbox_pauses (
            account TEXT NOT NULL,
            lane TEXT NOT NULL,
            paused_by TEXT NOT NULL,
            paused_at TEXT NOT NULL,
            PRIMARY KEY (account, lane)
        );
CREATE TABLE rate_budget (
            account TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            window INTEGER NOT NULL,
            used INTEGER NOT NULL,
            PRIMARY KEY (account, endpoint)
        );
CREATE TABLE dispatchers (
            holder TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            heartbeat_at REAL NOT NULL
        );

-- migration: m0005_menus
CREATE TABLE menu_versions (
            id INTEGER PRIMARY KEY,
            account TEXT NOT NULL,
            version INTEGER NOT NULL,
            state TEXT NOT NULL,
            content TEXT NOT NULL,
            hash TEXT NOT NULL,
            source TEXT NOT NULL DEFAULT '',
            rollback_of INTEGER,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            decided_by TEXT,
            decided_at TEXT,
            reason TEXT,
            deployed_by TEXT,
            deployed_at TEXT,
            wechat_answer TEXT,
            note TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL,
            UNIQUE (account, version)
        );
CREATE INDEX menu_versions_state ON menu_versions(account, state);

-- migration: m0006_followers
CREATE TABLE followers (
            account TEXT NOT NULL,
            openid TEXT NOT NULL,
            subscribed INTEGER NOT NULL DEFAULT 1,
            subscribe_at TEXT,
            subscribe_scene TEXT,
            qr_scene INTEGER,
            qr_scene_str TEXT,
            language TEXT,
            remark TEXT,
            unionid TEXT,
            blacklisted INTEGER NOT NULL DEFAULT 0,
            unsubscribe_at TEXT,
            profile_at TEXT,
            listed_at TEXT NOT NULL,
            seen_pass INTEGER NOT NULL DEFAULT 0,
            list_seq INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (account, openid)
        );
CREATE INDEX followers_list_seq ON followers(account, list_seq);
CREATE TABLE follower_tags (
            account TEXT NOT NULL,
            tag_id INTEGER NOT NULL,
            openid TEXT NOT NULL,
            PRIMARY KEY (account, tag_id, openid)
        );
CREATE INDEX follower_tags_openid ON follower_tags(account, openid);
CREATE TABLE tags (
            account TEXT NOT NULL,
            tag_id INTEGER NOT NULL,
            name TEXT NOT NULL,
            count INTEGER NOT NULL DEFAULT 0,
            synced_at TEXT NOT NULL,
            PRIMARY KEY (account, tag_id)
        );
CREATE TABLE follower_sync (
            account TEXT PRIMARY KEY,
            pass_no INTEGER NOT NULL DEFAULT 0,
            kind TEXT NOT NULL DEFAULT 'full',
            phase TEXT NOT NULL DEFAULT 'done',
            cursor TEXT NOT NULL DEFAULT '',
            tail TEXT NOT NULL DEFAULT '',
            pages INTEGER NOT NULL DEFAULT 0,
            listed INTEGER NOT NULL DEFAULT 0,
            new INTEGER NOT NULL DEFAULT 0,
            total INTEGER,
            profiles INTEGER NOT NULL DEFAULT 0,
            unsubscribed INTEGER NOT NULL DEFAULT 0,
            started_at TEXT,
            updated_at TEXT,
            finished_at TEXT,
            last_full_at TEXT,
            holder TEXT,
            heartbeat_at REAL,
            first_load INTEGER NOT NULL DEFAULT 0
        );
CREATE TABLE follower_staging (
            account TEXT NOT NULL,
            pass_no INTEGER NOT NULL,
            page INTEGER NOT NULL,
            openids TEXT NOT NULL,
            PRIMARY KEY (account, pass_no, page)
        );

-- migration: m0007_broadcasts
CREATE TABLE broadcasts (
            id INTEGER PRIMARY KEY,
            account TEXT NOT NULL,
            title TEXT NOT NULL DEFAULT '',
            content_kind TEXT NOT NULL,
            content TEXT NOT NULL,
            audience_kind TEXT NOT NULL,
            audience TEXT NOT NULL,
            audience_size INTEGER NOT NULL DEFAULT 0,
            scheduled_at TEXT,
            state TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            approved_hash TEXT,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            submitted_by TEXT,
            submitted_at TEXT,
            approved_by TEXT,
            approved_at TEXT,
            rejected_by TEXT,
            rejected_at TEXT,
            reject_reason TEXT,
            started_at TEXT,
            expanded_at TEXT,
            finished_at TEXT,
            cancelled_by TEXT,
            cancelled_at TEXT,
            results TEXT NOT NULL DEFAULT '{}',
            updated_at TEXT NOT NULL
        );
CREATE INDEX broadcasts_due ON broadcasts(state, scheduled_at);
CREATE TABLE broadcast_openids (
            broadcast_id INTEGER NOT NULL REFERENCES broadcasts(id),
            openid TEXT NOT NULL,
            PRIMARY KEY (broadcast_id, openid)
        );
CREATE TABLE templates (
            account TEXT NOT NULL,
            template_id TEXT NOT NULL,
            title TEXT NOT NULL,
            content TEXT NOT NULL,
            example TEXT NOT NULL DEFAULT '',
            primary_industry TEXT NOT NULL DEFAULT '',
            deputy_industry TEXT NOT NULL DEFAULT '',
            synced_at TEXT NOT NULL,
            PRIMARY KEY (account, template_id)
        );
CREATE TABLE mass_receipts (
            account TEXT NOT NULL,
            month TEXT NOT NULL,
            openid TEXT NOT NULL,
            receipts INTEGER NOT NULL,
            PRIMARY KEY (account, month, openid)
        );

-- migration: m0008_lean_log
DROP INDEX messages_openid;
DROP INDEX messages_at;
CREATE INDEX messages_at ON messages(account, at, openid);
ALTER TABLE follower_state DROP COLUMN last_message_at;
