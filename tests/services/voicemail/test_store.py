"""Message records: counts, listening order, the directory store and crash recovery."""

import pytest

from onenumber.media.wav import WavWriter, read_wav
from onenumber.services.voicemail.store import (
    DirectoryMessageStore,
    MemoryMessageStore,
    VoicemailMessage,
    listening_order,
    summary,
)
from onenumber.sip.bodies import MessageSummary


def test_summary_and_order():
    ms = [
        VoicemailMessage("a", "1000", "1001", "", 3.0, "/a", heard=True),
        VoicemailMessage("b", "1000", "1001", "", 2.0, "/b", urgent=True),
        VoicemailMessage("c", "1000", "1001", "", 1.0, "/c"),
    ]
    assert summary(ms, "sip:*98@pbx") == MessageSummary(2, 1, 1, 0, "sip:*98@pbx")
    assert [m.id for m in listening_order(ms)] == ["c", "b", "a"]
    assert summary([]) == MessageSummary()


@pytest.mark.parametrize("kind", ["memory", "directory"])
async def test_store_operations(tmp_path, kind):
    store = MemoryMessageStore() if kind == "memory" else DirectoryMessageStore(tmp_path)
    path = tmp_path / "1000" / "m1.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF")
    m = VoicemailMessage("m1", "1000", "1001", "Bob", 10.0, str(path))
    await store.add(m)
    await store.add(VoicemailMessage("m2", "2000", "1001", "", 11.0, str(tmp_path / "2000" / "m2.wav")))
    assert [x.id for x in await store.list("1000")] == ["m1"]
    assert await store.get("m1") == m
    heard = await store.set_heard("m1")
    assert heard.heard and (await store.get("m1")).heard
    assert await store.set_heard("nope") is None
    gone = await store.delete("m1")
    assert gone.id == "m1" and not path.exists()
    assert await store.list("1000") == [] and await store.delete("m1") is None


async def test_directory_store_recovers_a_message_cut_by_a_crash(tmp_path):
    store = DirectoryMessageStore(tmp_path / "vm")
    path = store.path_for("1000", "m1")
    path.parent.mkdir(parents=True)
    m = VoicemailMessage("m1", "1000", "1001", "Bob", 10.0, str(path))
    await store.add(m)  # written when recording starts
    w = WavWriter(path, fixup_every=1.0)
    for _ in range(130):  # 2.6 s in 20 ms frames, then "crash": never closed
        w.write(b"\x10\x00" * 160)
    recovered = await store.recover()
    assert [r.id for r in recovered] == ["m1"]
    assert recovered[0].complete and recovered[0].duration == pytest.approx(2.6)
    assert len(read_wav(path)[1]) == 2.6 * 8000 * 2
    assert await store.recover() == []  # nothing left to do
    assert (await store.get("m1")).duration == pytest.approx(2.6)


def test_path_for_refuses_odd_names(tmp_path):
    store = DirectoryMessageStore(tmp_path)
    with pytest.raises(ValueError):
        store.path_for("../etc", "x")
    with pytest.raises(ValueError):
        store.path_for("1000", "a/b")
