"""The simulation the tests and the twin share: the program's resource graph captured under Pulumi's mocks
(`sim.capture`), with the provider's answers (`sim.outputs`, `sim.invokes`) and what AWS and Kubernetes would
reject (`sim.rules`). `pulumi up` never imports it; it imports `infra`, never the other way round.
"""
