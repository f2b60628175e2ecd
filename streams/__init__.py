"""The worker and its tools: Faust agents, decoding, the fast lane, replay and the CLI."""

from config.native import activate

activate(__path__, "streams")
