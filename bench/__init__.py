"""Benchmark of the CRM → ERP flows against the simulators: ``python -m bench`` (``make bench``).

It runs the flows through the very functions the DAG tasks call (``fxiaoke_k3cloud.flows.steps``), each phase in
its own subprocess so peak memory is that phase's alone, and compares them with the API-call lower bound and
with the per-record ``Save`` baseline most hand-written integrations use. See bench/README.md.
"""
