"""Worker processes: which worker a response belongs to, and the Unix-socket link that hands
it over (two links in one process, real sockets)."""

from __future__ import annotations

import asyncio
import os

from onenumber.sip.stack import Send, Source, Stack
from onenumber.transport.driver import Driver
from onenumber.transport.workers import WorkerLink, branch_worker


class _TU:
    def on_request(self, *args: object) -> None: ...

    def on_ack(self, *args: object) -> None: ...

    def on_response(self, *args: object) -> None: ...


def response(branch: str, more_vias: str = "") -> bytes:
    return (f"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={branch};rport{more_vias}\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKcaller00\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n"
            "Content-Length: 0\r\n\r\n").encode()


def test_branch_names_the_worker_in_both_forms_we_make() -> None:
    stack = Stack(_TU())  # type: ignore[arg-type]
    stack.set_worker(5)
    plain = stack.new_branch()
    assert branch_worker(response(plain)) == 5
    proxied = f"z9hG4bKon{'ab12' * 8}.{plain[len('z9hG4bK'):]}"  # services/proxy.py `_new_branch`
    assert branch_worker(response(proxied)) == 5
    assert branch_worker(response(plain).replace(b"Via:", b"v:", 1)) == 5  # compact form


def test_not_ours_or_not_the_top_via_is_kept() -> None:
    assert branch_worker(response("z9hG4bK-sipp-1")) is None
    assert branch_worker(b"SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n") is None
    # only the top Via counts, even when several share one header line
    assert branch_worker(response("z9hG4bKother", ", SIP/2.0/UDP h;branch=z9hG4bK00000001")) is None


async def test_a_response_for_another_worker_is_handed_over_and_flow_sends_too() -> None:
    port = 40000 + os.getpid() % 20000  # names only (abstract Unix sockets), no port is bound
    got: list[tuple[int, bytes, Source]] = []
    sent: list[Send] = []
    links = []
    for i in (0, 1):
        driver = Driver(Stack(_TU()))  # type: ignore[arg-type]
        driver.receive_local = lambda data, source, i=i: got.append((i, data, source))  # type: ignore[method-assign]
        driver._send = lambda item: sent.append(item)  # type: ignore[method-assign]
        links.append(WorkerLink(driver, bind="127.0.0.1", port=port, index=i, count=2))
    try:
        stack1 = Stack(_TU())  # type: ignore[arg-type]
        stack1.set_worker(1)
        data = response(stack1.new_branch())
        src = Source("udp", ("127.0.0.1", 5070), ("127.0.0.1", 5060))
        links[0].driver.receive(data, src)  # reached worker 0: it belongs to worker 1
        assert links[0].handoff(response("z9hG4bKforeign"), src) is False  # not ours: handled here
        assert links[0].forward_send(Send(b"BYE", "tcp", ("127.0.0.1", 5071), "w1.tcp-9"))
        assert not links[0].forward_send(Send(b"BYE", "tcp", ("127.0.0.1", 5071), "w0.tcp-9"))  # our own
        for _ in range(100):
            if got and sent:
                break
            await asyncio.sleep(0.01)
        assert got == [(1, data, src)]
        assert sent == [Send(b"BYE", "tcp", ("127.0.0.1", 5071), "w1.tcp-9")]
        assert links[0].stats["handed_out"] == 2 and links[1].stats["handed_in"] == 2
    finally:
        for link in links:
            link.close()


async def test_a_burst_larger_than_the_socket_queue_waits_instead_of_being_lost() -> None:
    port = 20000 + os.getpid() % 20000
    got: list[bytes] = []
    links = []
    for i in (0, 1):
        driver = Driver(Stack(_TU()))  # type: ignore[arg-type]
        driver.receive_local = lambda data, source: got.append(data)  # type: ignore[method-assign]
        links.append(WorkerLink(driver, bind="127.0.0.1", port=port, index=i, count=2))
    try:
        stack1 = Stack(_TU())  # type: ignore[arg-type]
        stack1.set_worker(1)
        src = Source("udp", ("127.0.0.1", 5070), ("127.0.0.1", 5060))
        burst = [response(stack1.new_branch()) for _ in range(3000)]  # net.unix.max_dgram_qlen is 10 to 512
        for data in burst:  # all before worker 1's loop reads anything
            assert links[0].handoff(data, src)
        for _ in range(500):
            if len(got) == len(burst):
                break
            await asyncio.sleep(0.01)
        assert got == burst  # all of them, in order
        assert links[0].stats["lost"] == 0
    finally:
        for link in links:
            link.close()
