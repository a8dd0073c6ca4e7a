"""Media: the rtpengine relay between WebRTC and plain RTP (ng client, process, bridge policy)."""
