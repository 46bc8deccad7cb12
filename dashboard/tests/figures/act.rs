//! `act`: the outcomes of the actions, through the store calls, on
//! workflows saved by the backend.

use bytes::Bytes;
use sayiir_core::DefinitionHash;
use sayiir_core::snapshot::{ExecutionPosition, WorkflowSnapshot};
use sayiir_diesel_dashboard::act::{self, Backend, Outcome};
use sayiir_persistence::SnapshotStore;

use crate::common::*;

fn at_task(id: &str) -> WorkflowSnapshot {
    let mut s = WorkflowSnapshot::with_initial_input(
        id,
        DefinitionHash::sha256("act-test"),
        Bytes::from_static(b"1"),
    );
    s.update_position(ExecutionPosition::AtTask {
        task_id: sayiir_core::TaskId::from("a"),
    });
    s
}

/// The `result` of a [`Outcome::Done`], or the outcome itself.
fn result(o: &Outcome) -> &'static str {
    match o {
        Outcome::Done(d) => d.result,
        Outcome::Sent(s) => s.delivery,
        Outcome::Refused(_) => "refused",
        Outcome::NotFound(_) => "not found",
    }
}

#[tokio::test]
async fn actions_answer_with_their_outcome() {
    let db = test_db().await;
    let b = Backend::connect(db.url()).await.unwrap();
    let mut conn = connect(&db).await;
    b.save_snapshot(&mut at_task("live")).await.unwrap();
    let mut done = at_task("done");
    b.save_snapshot(&mut done).await.unwrap();
    done.mark_completed(Bytes::from_static(b"2"));
    b.save_snapshot(&mut done).await.unwrap();

    let paused = act::pause(&b, &mut conn, "live", Some("why".into()), "me")
        .await
        .unwrap();
    assert_eq!(result(&paused), "requested");
    let json = serde_json::to_value(&paused).unwrap();
    assert_eq!(json["action"], "pause");
    assert_eq!(json["status"], "InProgress");
    assert_eq!(
        result(&act::resume(&b, &mut conn, "live").await.unwrap()),
        "pause_withdrawn"
    );
    let again = act::resume(&b, &mut conn, "live").await.unwrap();
    let Outcome::Refused(why) = &again else {
        panic!("{again:?}")
    };
    assert!(why.starts_with("cannot resume \"live\""), "{why}");
    assert_eq!(
        serde_json::to_value(&again).unwrap(),
        serde_json::json!(why)
    );
    assert_eq!(
        result(
            &act::cancel(&b, &mut conn, "live", None, "me")
                .await
                .unwrap()
        ),
        "requested"
    );
    let refused = act::cancel(&b, &mut conn, "done", None, "me")
        .await
        .unwrap();
    assert!(
        matches!(&refused, Outcome::Refused(m) if m == "cannot cancel a workflow that is Completed")
    );
    let missing = act::cancel(&b, &mut conn, "ghost", None, "me")
        .await
        .unwrap();
    assert!(matches!(&missing, Outcome::NotFound(m) if m == "no workflow \"ghost\""));

    let send = async |conn: &mut diesel_async::AsyncPgConnection, id: &str, allow: bool| {
        act::send_event(&b, conn, id, "go", Bytes::from_static(b"7"), allow)
            .await
            .unwrap()
    };
    assert_eq!(result(&send(&mut conn, "ghost", false).await), "not found");
    assert_eq!(result(&send(&mut conn, "done", true).await), "refused");
    let buffered = send(&mut conn, "ghost", true).await;
    let json = serde_json::to_value(&buffered).unwrap();
    assert_eq!(json["delivery"], "buffered");
    assert_eq!(json["bytes"], 1);
    assert_eq!(json["status"], serde_json::Value::Null);
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM sayiir.events WHERE instance_id = 'ghost'"
        )
        .await,
        1
    );
}
