"""``aisle demo``: a chain in miniature on this machine, shopped by simulated kiosks and phones.

``cli`` is the command, ``run`` the demo from start to finish, ``chain`` its steps (a cloud, the
stores, the shopping, the outage, the summary), ``catalog`` the catalog it loads, ``processes``
and ``relay`` the child processes it starts and the link it cuts.
"""
