-- Portable SQL: the kit builds its template from this folder on every backend.
CREATE TABLE note (id BIGINT PRIMARY KEY, body VARCHAR(100) NOT NULL);
INSERT INTO note (id, body) VALUES (1, 'seeded by a migration');
