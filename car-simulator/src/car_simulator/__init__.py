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

Restart-safe and replicated: each car's row (``acr-car-simulator-cars``) holds its ride, legs, phase and
progress. The fleet is split into 16 leased groups; a replica drives the cars of the groups it holds,
read from their rows when it gains them. A command (assignment, release, out of service, an operator's
stall) is posted to the group's mailbox with the message's marker, and the group's driver applies it in
order, storing the car's row with it; progress is saved on each phase change and every
``ACR_CAR_SAVE_EVERY_S`` wall seconds while the car drives or boards, every write fenced by the group lease.
After a restart or a change of hands every car reports at once and goes on from its row: it may repeat the
stretch driven since its last save, it never starts its ride over nor forgets it. Simulated time is wall
time x speed, so it keeps growing across restarts and replicas.
"""
