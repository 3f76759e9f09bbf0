-- Up Migration
-- When the customer proved the address is theirs (user.verified). Until then the first name in
-- contacts is whatever the person who signed up typed, and the address may be someone else's, so
-- mails print no name. Contacts that already got their welcome mail (sent on user.verified) are verified.
ALTER TABLE contacts ADD COLUMN verified_at timestamptz;
UPDATE contacts c SET verified_at = m.sent_at
  FROM (SELECT customer_id, min(coalesce(sent_at, created_at)) AS sent_at FROM mails WHERE template = 'welcome' GROUP BY customer_id) m
  WHERE m.customer_id = c.customer_id;
-- Down Migration
ALTER TABLE contacts DROP COLUMN verified_at;
