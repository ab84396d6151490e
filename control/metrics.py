"""Prometheus exposition of the served device, read from the published state at scrape time.

Names: ``tickwire_device_total{counter}`` for every device counter (they restart with each
pass of a looping replay, which Prometheus treats as a counter reset), gauges of positions,
exposure, gross exposure, risk limits and the kill switch, the tick-to-trade latency histogram
in fabric cycles (``tickwire_tick_to_trade_cycles``: bin ``i`` holds latencies up to
``((i + 1) << bin_shift) - 1``, the last bin everything above), and the service's own
figures (replay position, orders out over every pass, WebSocket clients and messages).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

__all__ = ["registry_for", "exposition", "VALUE_COUNTERS"]

#: device "counters" that hold a value, not a count: exported as gauges
VALUE_COUNTERS = ("last_gap_first", "last_gap_last")
_USD = 10_000          # prices and notionals are in 1/10000 USD


class _Collector:
    def __init__(self, service):
        self.service = service

    def collect(self):
        svc = self.service
        keys = ("counters", "positions", "gross", "risk", "status", "latency", "pass",
                "position", "messages_done", "orders_total")
        st = svc.hub.snapshot(lambda s: {k: s.get(k) for k in keys})[1]
        dev = CounterMetricFamily("tickwire_device", "Device counters (this pass)",
                                  labels=["counter"])
        val = GaugeMetricFamily("tickwire_device_value", "Device registers that hold a value",
                                labels=["counter"])
        for k, v in st["counters"].items():
            (val if k in VALUE_COUNTERS else dev).add_metric([k], v)
        yield dev
        yield val
        pos = GaugeMetricFamily("tickwire_position_shares", "Position per symbol (shares, "
                                "positive long)", labels=["symbol"])
        exp = GaugeMetricFamily("tickwire_exposure_usd", "Position times mid price per symbol "
                                "(USD)", labels=["symbol"])
        for sym, p in st["positions"].items():
            pos.add_metric([sym], p["position"])
            exp.add_metric([sym], p["exposure"] / _USD)
        yield pos
        yield exp
        yield GaugeMetricFamily("tickwire_gross_exposure_usd", "Gross exposure booked by the "
                                "risk stage (USD)", value=st["gross"] / _USD)
        lim = GaugeMetricFamily("tickwire_risk_limit", "Global risk parameters (register "
                                "units)", labels=["param"])
        for k, v in st["risk"].items():
            lim.add_metric([k], v)
        yield lim
        yield GaugeMetricFamily("tickwire_kill_active", "The kill switch is in effect",
                                value=int(st["status"].get("kill_active", 0)))
        lat = st.get("latency")
        if lat and lat.get("bins"):
            shift, bins = lat["bin_shift"], lat["bins"]
            buckets, acc = [], 0
            for i, n in enumerate(bins[:-1]):
                acc += n
                buckets.append((str(((i + 1) << shift) - 1), acc))
            buckets.append(("+Inf", acc + bins[-1]))
            h = HistogramMetricFamily("tickwire_tick_to_trade_cycles", "Tick-to-trade latency "
                                      "in fabric cycles (the device's histogram)")
            h.add_metric([], buckets, lat["sum"])
            yield h
        yield GaugeMetricFamily("tickwire_replay_pass", "Pass of the replay", value=st["pass"])
        yield GaugeMetricFamily("tickwire_replay_position_frames", "Frames offered in this "
                                "pass", value=st["position"])
        yield CounterMetricFamily("tickwire_replay_messages", "ITCH messages offered over every "
                                  "pass", value=st["messages_done"])
        yield CounterMetricFamily("tickwire_orders", "Order frames out over every pass",
                                  value=st["orders_total"])
        yield GaugeMetricFamily("tickwire_ws_clients", "WebSocket clients connected",
                                value=svc.clients)
        yield CounterMetricFamily("tickwire_ws_published", "Messages published to WebSocket "
                                  "clients", value=svc.hub.published)
        yield CounterMetricFamily("tickwire_ws_resyncs", "Clients resynchronised after falling "
                                  "behind", value=svc.resyncs)


def registry_for(service) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Collector(service))
    return reg


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
