"""ACR car-simulator: the car edge — simulated autonomous cars streaming telemetry to Kinesis.

What a car reports (``CarTelemetry`` on ``acr-car-telemetry``, partition key = car id, so one car's
records are in order on one shard):

- a ride: ``TO_PICKUP`` records (target = pickup) ... a last ``TO_PICKUP`` record exactly AT the pickup
  (speed 0), ``BOARDING`` at the pickup (target None) for ``ACR_BOARDING_S`` simulated seconds,
  ``TO_DESTINATION`` (target = drop-off) ... a last ``TO_DESTINATION`` record exactly AT the drop-off
  (speed 0, ``odometerM`` final, ride id still set), then ``IDLE`` there with ride id None.
  Each phase change is always reported, with the exact simulated time it happened (``simTimeS``).
- periodic records, bounded in WALL time: a car with a ride every 0.5 s, an idle car every 30 s (staggered).
- ``STALLED`` (ride and target kept, position frozen) while stalled through the API; after
  ``CarOutOfService`` or ``CarReleased`` the car has no ride (STALLED if still stalled, else IDLE).

The cars live in memory: a restart re-seeds the shared fleet's start positions and the simulated clock.
"""
