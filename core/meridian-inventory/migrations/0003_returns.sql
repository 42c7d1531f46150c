-- A confirmed reservation whose order was cancelled before shipping goes back on sale.
ALTER TABLE reservations DROP CONSTRAINT reservations_status_check;
ALTER TABLE reservations ADD CONSTRAINT reservations_status_check
    CHECK (status IN ('held', 'confirmed', 'released', 'expired', 'returned'));
