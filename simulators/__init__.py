"""Local, faithful HTTP simulators of the Fxiaoke OpenAPI and the Kingdee K3Cloud Web API.

They import nothing from ``plugins/``: production code never depends on them.
"""
