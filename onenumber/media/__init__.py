"""Media for the voicemail service: G.711, RTP, RFC 4733 DTMF, WAV files and SDP."""
