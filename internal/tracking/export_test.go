package tracking

// PixelGIF is the open pixel's image.
func PixelGIF() []byte { return gif }
