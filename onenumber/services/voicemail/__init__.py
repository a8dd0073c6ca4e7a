"""The voicemail service: one box per account, a SIP user agent of its own.

- `store`: the message record, the storage interface the service writes through
  (`MessageStore`), an in-memory store and a directory store (WAV + JSON side-car);
- `ua`: the answered call's dialog and media lifecycle (sans-IO: SDP answer, 2xx
  retransmission, BYE both ways, CANCEL);
- `deposit`: the call that leaves a message (sans-IO: greeting, record, save, goodbye);
- `menu`: the listening menu (sans-IO DTMF state machine: new then saved messages,
  replay / delete / save / next), and `listen`: that menu inside an answered call;
- `actions`: what the sans-IO parts ask the glue to do;
- `mwi`: message-waiting bodies and unsolicited NOTIFYs (RFC 3842).

The sans-IO parts take `now` and return actions; the asyncio glue that runs them (RTP
sessions, playing, recording, the stack) lives at the services' edge.
"""
