"""tickwire.control: operate a running device over HTTP.

``tickwire serve`` replays a capture through a device of any back-end in a background thread
(:mod:`.replay`) and serves, from the same process (:mod:`.service`, :mod:`.api`): a REST API
described at ``/openapi.json``, a sequence-numbered WebSocket stream (:mod:`.hub`),
Prometheus metrics (:mod:`.metrics`) and a dashboard (``static/``: plain ES modules). Writes
go through the register map at poll points (:mod:`.writes`), need the write token
(:mod:`.auth`) and land in the audit log (:mod:`.audit`).
"""

from .replay import Speed
from .service import ServerThread, Service, load_capture, serve

__all__ = ["Service", "ServerThread", "Speed", "load_capture", "serve"]
