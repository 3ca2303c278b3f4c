# Sourced (bash) by the device scripts of this folder, after `.gpu/device-run.sh` has unpacked the
# binaries to /tmp/hw, the Vulkan loader into / (on the GPU machine, which lacks it) and the
# validation layer to /tmp/vvl: the environment device-run.sh's own stages run in. The Vulkan tests
# turn the validation layer on themselves, so without VK_LAYER_PATH and the layer's folder on the
# library path they stop at once ("validation was requested but VK_LAYER_KHRONOS_validation is not
# installed"), as device-first.sh's Vulkan section did on a dry run here before this file.
H=/tmp/hw/bin
export PATH=/usr/local/cuda/bin:$PATH
export LD_LIBRARY_PATH=/tmp/hw/lib:/usr/local/cuda/lib64:/tmp/vvl/usr/lib/x86_64-linux-gnu
export VK_LAYER_PATH=/tmp/vvl/usr/share/vulkan/explicit_layer.d
export HEARTH_ASSETS=.gpu/assets
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
