"""The event path's pure part: SQS bodies -> validated, routed notifications or quarantine reasons."""
