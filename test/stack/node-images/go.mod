// The two images the local stack's node runs, built here from these sources only (no module dependencies): no image
// is ever pulled. build-node-images.sh packs each static binary into a one-layer image archive.
module tally.local/node-images

go 1.24
