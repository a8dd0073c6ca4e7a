"""Media: the rtpengine relay between WebRTC and plain RTP (ng client, process, bridge policy), and the
voicemail service's own media (G.711, RTP, RFC 4733 DTMF, WAV files, SDP, the spoken greeting)."""
