"""Tests of the K3Cloud Web API simulator (simulators/k3cloud)."""
