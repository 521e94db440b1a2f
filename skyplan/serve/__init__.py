"""Serve: a service's replicas behind a load balancer, autoscaled, on spot and on-demand.

Layout: ``states`` (records), ``config`` (a task's service section with
defaults), ``autoscaler`` and ``reconcile`` (pure decisions), ``lb`` (the
aiohttp reverse proxy), ``store`` (the jobs database's serve tables),
``executor`` (acts through the one launch path), ``controller`` (decides, then
hands actions to the executor) and ``daemon`` (one process per service).
"""
