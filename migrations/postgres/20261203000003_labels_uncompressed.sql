-- Label images are PDF, PNG or ZPL as the carrier returned them, mostly compressed already:
-- PostgreSQL's compression of each one cost CPU on every create for little space (3 % of the
-- database's CPU in the orders-to-waybill profile). They are still stored out of line.
ALTER TABLE labels ALTER COLUMN content SET STORAGE EXTERNAL;
