// tickwire_xrt: the registers of a user-managed RTL kernel from Python, over XRT's xrt::ip.
//
// pyxrt has no class for a user-managed kernel's registers (its kernel class needs the
// ap_ctrl protocol), so the host reaches the appliance's AXI4-Lite window through this
// module: Kernel(index, uuid, name).read_register(offset) / write_register(offset, value),
// plus the xclbin load and UUID queries deploy needs and the device's health (get_info).
// Built by tickwire.hw.board.xrt_shim.build_shim against XRT's headers (Debian: libxrt-dev;
// Xilinx's packages: /opt/xilinx/xrt/include).
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include <xrt/xrt_device.h>
#include <xrt/xrt_uuid.h>
#if __has_include(<xrt/experimental/xrt_ip.h>)
#include <xrt/experimental/xrt_ip.h>
#else
#include <experimental/xrt_ip.h>
#endif
#if __has_include(<xrt/experimental/xrt_xclbin.h>)
#include <xrt/experimental/xrt_xclbin.h>
#elif __has_include(<xrt/xrt_xclbin.h>)
#include <xrt/xrt_xclbin.h>
#else
#include <experimental/xrt_xclbin.h>
#endif

namespace py = pybind11;

namespace {

class Kernel {
 public:
  Kernel(unsigned index, const std::string& uuid, const std::string& name)
      : device_(index), ip_(device_, xrt::uuid(uuid), name) {}
  uint32_t read_register(uint32_t offset) { return ip_.read_register(offset); }
  void write_register(uint32_t offset, uint32_t value) { ip_.write_register(offset, value); }

 private:
  xrt::device device_;
  xrt::ip ip_;
};

std::string loaded_uuid(unsigned index) {
  return xrt::device(index).get_xclbin_uuid().to_string();
}

std::string load(unsigned index, const std::string& path) {
  xrt::device device(index);
  return device.load_xclbin(path).to_string();
}

std::string xclbin_uuid(const std::string& path) {
  return xrt::xclbin(path).get_uuid().to_string();
}

py::dict info(unsigned index) {
  xrt::device device(index);
  py::dict out;
  out["name"] = device.get_info<xrt::info::device::name>();
  out["bdf"] = device.get_info<xrt::info::device::bdf>();
  // JSON reports of the card's sensors (temperatures, rails, power)
  out["thermal"] = device.get_info<xrt::info::device::thermal>();
  out["electrical"] = device.get_info<xrt::info::device::electrical>();
  return out;
}

}  // namespace

PYBIND11_MODULE(tickwire_xrt, m) {
  m.doc() = "Registers of tickwire's user-managed kernel over xrt::ip";
  py::class_<Kernel>(m, "Kernel")
      .def(py::init<unsigned, const std::string&, const std::string&>(), py::arg("index"),
           py::arg("uuid"), py::arg("name"))
      .def("read_register", &Kernel::read_register)
      .def("write_register", &Kernel::write_register);
  m.def("loaded_uuid", &loaded_uuid);
  m.def("load", &load);
  m.def("xclbin_uuid", &xclbin_uuid);
  m.def("info", &info);
}
