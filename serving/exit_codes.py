"""How a server process ends when it never serves: what a supervisor reads to decide.

A fleet supervisor (serving/fleet) restarts a replica that failed to load (the registry
or the store may be back soon), but does not try again a version the provenance checks
refused (serving/provenance.py): it would be refused again at every attempt.
"""

INSECURE = 2  # open beyond loopback without a token, and not told --insecure
LOAD_FAILED = 3  # the model could not be downloaded or loaded
MODEL_REFUSED = 4  # the version is not one this server may load
