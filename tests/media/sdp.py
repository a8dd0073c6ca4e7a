"""SDP samples: a deskphone's plain RTP offer and a browser's WebRTC answer/offer."""

RTP_OFFER = (
    "v=0\r\no=desk 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=sendrecv\r\n"
)

WEBRTC_SDP = (
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "a=group:BUNDLE 0\r\na=msid-semantic: WMS\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 101\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=candidate:1 1 udp 2122260223 127.0.0.1 {port} typ host generation 0\r\n"
    "a=ice-ufrag:Wd0F\r\na=ice-pwd:dd1Vq6bW3rF1f9YQyB7Q1aQ8\r\na=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 "
    "4F:58:6E:44:A9:3A:0C:53:E0:1C:80:0B:3F:A2:31:11:98:1C:41:3B:88:15:EF:36:34:A3:1E:9A:96:57:60:01\r\n"
    "a=setup:{setup}\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\n"
    "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
)
