# Recording stand-ins for the Vivado / Vitis Tcl commands a tickwire board project uses.
#
# Every call is appended to $::env(TW_RECORD), one line per call: the command and its
# (substituted) arguments separated by \x1f. The IP packager is modelled where the project
# depends on it: ipx::package_project reads the top module's ports from the Verilog files
# added and infers bus interfaces from their names the way Vivado does (PREFIX_<AXI signal>),
# so ipx::get_bus_interfaces answers only for interfaces the port names really make.
# Usage: tclsh run.tcl SCRIPT (run.tcl sources this file, then SCRIPT).

namespace eval ipx {}
set ::tw_out [open $::env(TW_RECORD) a]
set ::tw_files {}
set ::tw_top ""
set ::tw_inferred {}
set ::tw_masters {}

proc tw_record {args} {
    puts $::tw_out [join $args "\x1f"]
    flush $::tw_out
}

# commands that only record (and return their last argument or nothing)
foreach cmd {create_project update_compile_order update_ip_catalog create_bd_design
             apply_bd_automation connect_bd_intf_net connect_bd_net create_bd_intf_port
             create_bd_port make_bd_intf_pins_external assign_bd_address validate_bd_design
             save_bd_design make_wrapper launch_runs wait_on_run open_run report_utilization
             report_timing_summary close_project package_xo ipx::associate_bus_interfaces
             ipx::create_xgui_files ipx::update_checksums ipx::check_integrity ipx::save_core
             create_bd_cell} {
    proc $cmd {args} [format {tw_record %s {*}$args; return ""} $cmd]
}
# getters: return what they were asked for, so the recorded connections name their pins
foreach cmd {get_bd_cells get_bd_intf_pins get_bd_pins get_bd_intf_ports get_bd_ports
             get_bd_addr_spaces get_bd_addr_segs get_files get_runs get_clocks get_pins
             get_ports} {
    proc $cmd {args} {
        return [lindex $args end]
    }
}
proc current_project {args} { return tw_project }
proc current_fileset {args} { return sources_1 }
proc ipx::current_core {args} { return tw_core }
proc ipx::add_bus_parameter {name obj} { tw_record ipx::add_bus_parameter $name $obj; return "$obj/$name" }
proc ipx::add_memory_map {name core} { tw_record ipx::add_memory_map $name $core; return "mm:$name" }
proc ipx::add_address_block {name mm} { tw_record ipx::add_address_block $name $mm; return "$mm/$name" }
proc ipx::add_register {name blk} { tw_record ipx::add_register $name $blk; return "$blk/$name" }
proc ipx::add_register_parameter {name reg} {
    tw_record ipx::add_register_parameter $name $reg
    return "$reg/$name"
}
proc get_property {name obj} {
    if {$name eq "PROGRESS"} { return "100%" }
    return ""
}
proc set_property {args} { tw_record set_property {*}$args }

proc add_files {args} {
    tw_record add_files {*}$args
    foreach a $args {
        foreach f $a {
            if {[string match *.v $f]} { lappend ::tw_files $f }
        }
    }
}

# `file copy` / `file mkdir` of build outputs are recorded, everything else is Tcl's own
rename file tw_real_file
proc file {sub args} {
    if {$sub in {copy mkdir delete}} { tw_record file $sub {*}$args; return "" }
    return [tw_real_file $sub {*}$args]
}

# the ports of module $top in the added Verilog files (ANSI or non-ANSI header)
proc tw_ports {top} {
    foreach f $::tw_files {
        if {![tw_real_file exists $f]} { continue }
        set fh [open $f]; set text [read $fh]; close $fh
        if {[regexp "module\\s+$top\\s*\\((\[^;\]*)\\);" $text -> plist]} {
            set out {}
            foreach p [split $plist ","] {
                set p [string trim $p]
                regsub -all {\s+} $p " " p
                lappend out [lindex [split $p " "] end]
            }
            return $out
        }
    }
    error "ipx::package_project: no module $top in $::tw_files"
}

set ::tw_axis {tdata tkeep tlast tvalid tready tuser tid tdest tstrb}
set ::tw_axi {awaddr awvalid awready wdata wstrb wvalid wready bresp bvalid bready araddr
              arvalid arready rdata rresp rvalid rready awprot arprot
              awid awlen awsize awburst awlock awcache awqos wlast bid
              arid arlen arsize arburst arlock arcache arqos rid rlast}

proc ipx::package_project {args} {
    tw_record ipx::package_project {*}$args
    if {[lsearch $args -module] >= 0} { return "" }   ;# a block design's wrapper
    set groups [dict create]
    foreach p [tw_ports $::tw_top] {
        set i [string last "_" $p]
        set prefix [string range $p 0 [expr {$i - 1}]]
        set sig [string range $p [expr {$i + 1}] end]
        dict lappend groups $prefix $sig
    }
    set ::tw_inferred {}
    set ::tw_masters {}
    dict for {prefix sigs} $groups {
        set axis [expr {[lsearch $sigs tvalid] >= 0 && [lsearch $sigs tdata] >= 0}]
        set axi [expr {[lsearch $sigs awaddr] >= 0 && [lsearch $sigs rdata] >= 0}]
        set known [expr {$axis ? $::tw_axis : $::tw_axi}]
        if {!($axis || $axi)} { continue }
        foreach s $sigs {
            if {[lsearch $known $s] < 0} { error "interface $prefix: stray signal $s" }
        }
        lappend ::tw_inferred $prefix
        # an AXI4 (full) master gets an address space of its own, as Vivado infers one
        if {$axi && [lsearch $sigs awlen] >= 0} { lappend ::tw_masters $prefix }
        tw_record tw_inferred $prefix [expr {$axis ? "axis" : "aximm"}] [lsort $sigs]
    }
    foreach p [tw_ports $::tw_top] {
        if {$p eq "ap_clk" || $p eq "ap_rst_n"} {
            lappend ::tw_inferred $p
            tw_record tw_inferred $p [expr {$p eq "ap_clk" ? "clock" : "reset"}] $p
        }
    }
    return ""
}
proc ipx::get_address_spaces {name args} {
    if {[lsearch $::tw_masters $name] >= 0} { return "as:$name" }
    return ""
}
proc ipx::get_bus_interfaces {name args} {
    if {[lsearch $::tw_inferred $name] >= 0} { return "busif:$name" }
    return ""
}
# set_property top X [current_fileset] names the module ipx::package_project packages
rename set_property tw_set_property_rec
proc set_property {args} {
    if {[lindex $args 0] eq "top"} { set ::tw_top [lindex $args 1] }
    tw_set_property_rec {*}$args
}
