-- book soft delete (down)

ALTER TABLE "book" DROP COLUMN "deleted_at";
