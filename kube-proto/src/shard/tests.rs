use super::*;

#[test]
fn fnv1a64_matches_its_reference_values() {
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
}

#[test]
fn shards_spread_keys_about_evenly() {
    let mut counts = [0u32; 8];
    for i in 0..8000 {
        counts[shard_of(&format!("uid-{i}"), 8) as usize] += 1;
    }
    assert!(counts.iter().all(|c| (800..1200).contains(c)), "{counts:?}");
    assert_eq!(shard_of("x", 0), 0);
}

#[test]
fn an_object_is_sharded_by_uid_or_namespace() {
    let meta = ObjectMeta { uid: Some("u-1".into()), namespace: Some("team-a".into()), ..ObjectMeta::default() };
    assert_eq!(ShardKey::Uid.shard(&meta, 16), shard_of("u-1", 16));
    assert_eq!(ShardKey::Namespace.shard(&meta, 16), shard_of("team-a", 16));
    let c = ShardConfig::new("default", "ctl", "replica-a", 4);
    assert_eq!(c.member_lease_name(), format!("ctl-member-{:016x}", fnv1a64(b"replica-a")));
}
