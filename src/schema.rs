// @generated automatically by Diesel CLI.

pub mod sayiir {
    diesel::table! {
        sayiir.claims (instance_id) {
            instance_id -> Text,
            task_id -> Bytea,
            worker_id -> Text,
            claimed_at -> Timestamptz,
            expires_at -> Nullable<Timestamptz>,
        }
    }

    diesel::table! {
        sayiir.events (id) {
            id -> Int8,
            instance_id -> Text,
            signal_name -> Text,
            payload -> Bytea,
            sent_at -> Timestamptz,
        }
    }

    diesel::table! {
        sayiir.history (instance_id, revision) {
            instance_id -> Text,
            revision -> Int8,
            status -> Text,
            position_kind -> Nullable<Text>,
            current_task_id -> Nullable<Bytea>,
            snapshot -> Bytea,
            recorded_at -> Timestamptz,
        }
    }

    diesel::table! {
        sayiir.signals (instance_id, kind) {
            instance_id -> Text,
            kind -> Text,
            reason -> Nullable<Text>,
            requested_by -> Nullable<Text>,
            requested_at -> Timestamptz,
        }
    }

    diesel::table! {
        sayiir.task_outputs (instance_id, task_id) {
            instance_id -> Text,
            task_id -> Bytea,
            output -> Bytea,
            recorded_at -> Timestamptz,
        }
    }

    diesel::table! {
        sayiir.tasks (instance_id) {
            instance_id -> Text,
            position_kind -> Text,
            task_id -> Nullable<Bytea>,
            park_id -> Nullable<Bytea>,
            signal_name -> Nullable<Text>,
            wake_at -> Nullable<Timestamptz>,
            completed -> Bool,
            input_ready -> Bool,
            priority -> Int2,
            tags -> Array<Nullable<Text>>,
            retry_at -> Nullable<Timestamptz>,
            failed_worker -> Nullable<Text>,
            aged_from -> Timestamptz,
            queued_at -> Timestamptz,
            hint -> Nullable<Text>,
            quarantined -> Nullable<Text>,
            input_from -> Nullable<Bytea>,
            input_known -> Bool,
            released_at -> Nullable<Timestamptz>,
            claimed_until -> Nullable<Timestamptz>,
            requested -> Bool,
            offered_to -> Nullable<Text>,
            offered_until -> Nullable<Timestamptz>,
            event_waiting -> Bool,
            stalls -> Int4,
        }
    }

    diesel::table! {
        sayiir.workflows (instance_id) {
            instance_id -> Text,
            definition_hash -> Bytea,
            status -> Text,
            position_kind -> Nullable<Text>,
            current_task_id -> Nullable<Bytea>,
            snapshot -> Bytea,
            members -> Array<Nullable<Bytea>>,
            trace_parent -> Nullable<Text>,
            error -> Nullable<Text>,
            revision -> Int8,
            created_at -> Timestamptz,
            updated_at -> Timestamptz,
            finished_at -> Nullable<Timestamptz>,
        }
    }

    diesel::joinable!(claims -> workflows (instance_id));
    diesel::joinable!(history -> workflows (instance_id));
    diesel::joinable!(signals -> workflows (instance_id));
    diesel::joinable!(task_outputs -> workflows (instance_id));
    diesel::joinable!(tasks -> workflows (instance_id));

    diesel::allow_tables_to_appear_in_same_query!(
        claims,
        events,
        history,
        signals,
        task_outputs,
        tasks,
        workflows,
    );
}
