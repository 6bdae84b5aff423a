use super::*;

#[test]
fn typed_codes_serialize_as_they_print() {
    for c in job::ErrorCode::ALL {
        assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
    }
    use ecs::{StopCode, TaskStatus};
    for s in [TaskStatus::Provisioning, TaskStatus::Running, TaskStatus::Stopped] {
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
    }
    for c in [StopCode::TaskFailedToStart, StopCode::EssentialContainerExited, StopCode::UserInitiated] {
        assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
    }
    let unknown: TaskStatus = serde_json::from_str("\"SOMETHING_NEW\"").unwrap();
    assert_eq!(unknown, TaskStatus::Other);
}

#[test]
fn a_task_definition_revision_is_read_from_its_arn() {
    let arn = "arn:aws:ecs:eu-west-1:123456789012:task-definition/browser-jobs-dev-agent:12";
    assert_eq!(ecs::revision_of(arn), Some(("arn:aws:ecs:eu-west-1:123456789012:task-definition/browser-jobs-dev-agent", 12)));
    assert_eq!(ecs::revision_of("arn:aws:ecs:eu-west-1:123456789012:task-definition/browser-jobs-dev-agent"), None);
    assert_eq!(ecs::revision_of("arn:aws:ecs:eu-west-1:123456789012:task-definition/a:latest"), None);
    assert_eq!(ecs::revision_of(""), None);
}

#[test]
fn terminal_states_never_change() {
    for from in JobStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
        for to in JobStatus::ALL {
            assert!(!from.can_move_to(to), "{from} -> {to} must be refused");
        }
    }
}

#[test]
fn transitions_table() {
    use JobStatus::*;
    let allowed = [
        (Queued, Provisioning),
        (Provisioning, Provisioned),
        (Provisioned, Running),
        (Provisioning, Running),
        (Running, Completed),
        (Running, Failed),
        (Queued, Cancelled),
        (Running, Cancelled),
        (Queued, Failed),
    ];
    let refused = [(Queued, Running), (Queued, Completed), (Running, Provisioned), (Provisioned, Queued)];
    // A warm slot's job whose slot ended before taking it goes back to the queue.
    assert!(Running.can_move_to(Queued) && Provisioning.can_move_to(Queued));
    for (a, b) in allowed {
        assert!(a.can_move_to(b), "{a} -> {b} should be allowed");
    }
    for (a, b) in refused {
        assert!(!a.can_move_to(b), "{a} -> {b} should be refused");
    }
}

#[test]
fn names_round_trip() {
    for s in JobStatus::ALL {
        assert_eq!(JobStatus::parse(s.as_str()), Some(s));
    }
    for o in Output::ALL {
        assert_eq!(Output::parse(o.as_str()), Some(o));
    }
    for f in Function::ALL {
        assert_eq!(Function::parse(f.as_str()), Some(f));
    }
    assert_eq!(bucket::output_key("abc", Output::Screenshot), "jobs/abc/screenshot.png");
    assert_eq!(logs::agent_stream("123"), "agent/agent/123");
}
