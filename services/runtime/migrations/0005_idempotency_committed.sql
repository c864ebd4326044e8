-- Set in the business transaction of a call made under an idempotency key (with its audit row):
-- a claim whose change committed is never released nor run again, even when the answer was lost
-- (the process died, or the client left, between the commit and storing the answer).
ALTER TABLE idempotency_record ADD COLUMN committed_at timestamptz;
