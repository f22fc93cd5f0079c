"""Event-driven sync: watchers in the triggerer and the push receiver ring a doorbell (an asset event).

An event only wakes a flow; the run reads from the flow's watermark like any incremental run, so a lost,
repeated or merged event changes nothing. See docs/events.md.
"""
